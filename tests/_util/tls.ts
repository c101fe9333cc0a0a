/** Self-signed certificates for TLS tests, made with openssl into a temp dir. */

/** A certificate and key on disk, and the certificate's PEM (a client's trust anchor). */
export interface CertFiles {
  certFile: string;
  keyFile: string;
  /** The certificate in PEM, e.g. for `Deno.connectTls({ caCerts: [cert] })`. */
  cert: string;
}

/**
 * Make a self-signed P-256 certificate for `localhost` and `127.0.0.1` (a leaf, not a CA,
 * so that rustls accepts it as its own trust anchor) as `NAME.crt` and `NAME.key` in `dir`.
 */
export async function makeCert(dir: string, name: string): Promise<CertFiles> {
  const certFile = `${dir}/${name}.crt`;
  const keyFile = `${dir}/${name}.key`;
  const { code, stderr } = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
      ...["-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", "/CN=localhost"],
      ...["-addext", "basicConstraints=critical,CA:FALSE"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`openssl failed: ${new TextDecoder().decode(stderr)}`);
  return { certFile, keyFile, cert: await Deno.readTextFile(certFile) };
}
