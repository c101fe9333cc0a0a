import assert from "node:assert/strict";
import { inRange, parseCidr, parseIp, peerHost, peerIp } from "../../../server/access/mod.ts";
import { prng, randomText } from "../../_util/fuzz.ts";

const ip = (text: string) => {
  const parsed = parseIp(text);
  assert.ok(parsed, text);
  return parsed;
};
const within = (address: string, range: string) => inRange(ip(address), parseCidr(range));

Deno.test("IPv4 ranges match IPv4 and IPv4-mapped IPv6 addresses", () => {
  assert.ok(within("10.1.2.3", "10.0.0.0/8"));
  assert.ok(within("::ffff:10.1.2.3", "10.0.0.0/8"));
  assert.ok(within("::FFFF:0a01:0203", "10.0.0.0/8"));
  assert.ok(!within("11.0.0.1", "10.0.0.0/8"));
  assert.ok(within("192.168.255.255", "192.168.0.0/16"));
  assert.ok(!within("192.169.0.0", "192.168.0.0/16"));
  assert.ok(within("1.2.3.4", "0.0.0.0/0"));
  assert.ok(!within("2001:db8::1", "0.0.0.0/0"), "an IPv4 /0 is every IPv4 address, not IPv6");
  assert.ok(within("203.0.113.7", "203.0.113.7"));
  assert.ok(!within("203.0.113.8", "203.0.113.7"));
  assert.ok(within("172.16.5.4", "172.16.5.0/23"));
  assert.ok(!within("172.16.6.4", "172.16.4.0/23"));
  assert.ok(within("10.0.0.9", "10.0.0.255/8"), "host bits of the network are ignored");
});

Deno.test("IPv6 ranges, :: forms and zones", () => {
  assert.ok(within("2001:db8::1", "2001:db8::/32"));
  assert.ok(within("2001:0db8:ffff::1", "2001:db8::/32"));
  assert.ok(!within("2001:db9::1", "2001:db8::/32"));
  assert.ok(within("::1", "::1/128"));
  assert.ok(within("::1", "::1"));
  assert.ok(!within("::2", "::1"));
  assert.ok(within("fe80::1%eth0", "fe80::/10"));
  assert.ok(within("[2001:db8::5]", "2001:db8::/64"));
  assert.ok(within("1:2:3:4:5:6:7:8", "1:2:3:4::/64"));
  assert.ok(within("::", "::/0"));
  assert.ok(within("10.0.0.1", "::/0"), "an IPv6 /0 holds the mapped IPv4 space too");
  assert.deepEqual(ip("::ffff:1.2.3.4"), ip("1.2.3.4"));
  assert.deepEqual(ip("0:0:0:0:0:ffff:102:304"), ip("1.2.3.4"));
});

Deno.test("malformed addresses and ranges are refused", () => {
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.256",
      "1.2.3.4.5",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "12345::",
      "::g",
      "1.2.3.4::",
      "example.com",
      ":::",
    ]
  ) {
    assert.equal(parseIp(bad), undefined, bad);
  }
  for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "nope/8", "/8"]) {
    assert.throws(() => parseCidr(bad), SyntaxError, bad);
  }
});

Deno.test("peer labels: HOST:PORT, [V6]:PORT, unbracketed V6:PORT", () => {
  assert.deepEqual(peerIp("127.0.0.1:5000"), ip("127.0.0.1"));
  assert.deepEqual(peerIp("[::1]:5000"), ip("::1"));
  assert.deepEqual(peerIp("::1:5000"), ip("::1"));
  assert.deepEqual(peerIp("::ffff:127.0.0.1:5000"), ip("127.0.0.1"));
  assert.deepEqual(peerIp("2001:db8::7"), ip("2001:db8::7"));
  assert.equal(peerIp(undefined), undefined);
  assert.equal(peerIp("somewhere:80"), undefined);
  assert.equal(peerHost("[::1]:5000"), "::1");
  assert.equal(peerHost("127.0.0.1:5000"), "127.0.0.1");
  assert.equal(peerHost("garbage"), "");
});

Deno.test("fuzz: address and range parsers return, or throw SyntaxError, and agree", () => {
  const rand = prng(0xc1d2);
  const alphabet = "0123456789abcdefABCDEF:./%[]x ";
  for (let i = 0; i < 5000; i++) {
    const text = randomText(rand, alphabet, 23);
    const parsed = parseIp(text);
    if (parsed) assert.equal(parsed.length, 16, text);
    try {
      const range = parseCidr(text);
      assert.ok(range.bits >= 0 && range.bits <= 128, text);
      assert.equal(range.network.length, 16);
      if (!text.includes("/")) assert.ok(parsed && inRange(parsed, range), text);
    } catch (error) {
      assert.ok(error instanceof SyntaxError, `${text}: ${error}`);
    }
    peerIp(text);
    peerHost(text);
  }
});
