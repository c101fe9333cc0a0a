/**
 * Control URLs of a described session (RFC 2326 appendix C.1.1): the base a DESCRIBE's
 * answer sets (`Content-Base`, else `Content-Location`, else the request URL) and each
 * `a=control` resolved against it.
 *
 * @module
 */

/** The base URL of a DESCRIBE answer for a request to `requestUrl`. */
export function describeBase(requestUrl: string, headers: Headers): string {
  for (const name of ["content-base", "content-location"]) {
    const value = headers.get(name)?.trim();
    if (!value) continue;
    try {
      return withoutCredentials(new URL(value, requestUrl).href);
    } catch {
      // not a URL: try the next one
    }
  }
  return requestUrl;
}

/**
 * The URL `control` names against `base`: the base itself for none or `*`, an absolute
 * URL as it is, a relative one appended to the base with a `/` between them (what servers
 * mean by `trackID=0` against `rtsp://host/cam`, though RFC 3986 would drop `cam`).
 */
export function controlUrl(base: string, control: string | undefined): string {
  const value = control?.trim();
  if (!value || value === "*") return base;
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return withoutCredentials(value);
  if (value.startsWith("/")) return new URL(value, base).href;
  return base.endsWith("/") ? `${base}${value}` : `${base}/${value}`;
}

/** `url` without user information (credentials never go into a request line). */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = "";
    parsed.password = "";
    return parsed.href;
  } catch {
    return url;
  }
}
