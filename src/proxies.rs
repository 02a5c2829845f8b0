//! Which proxies are trusted to say where a request came from, and the client address that
//! follows from it: the address the per-address throttles count and the bookings list shows.
//!
//! `X-Forwarded-For` is a list each proxy *appends* to: `client, proxy1, proxy2`, and the peer
//! that connected is the last proxy. Only the entries added by proxies you run can be believed;
//! anything to their left may have come from the client itself. So the client is the rightmost
//! address that is not one of your proxies (axum-client-ip's "rightmost" mode, Rails'
//! `remote_ip`, nginx's `real_ip_recursive`). Taking the leftmost entry instead lets a client
//! behind an appending load balancer choose its own address, and walk round every throttle.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// `KEYCARD_TRUSTED_PROXIES`: the proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
/// entries are believed. Empty by default: the header is ignored and the peer is the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `addr` is one of the trusted proxies.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address, from the connection's `peer` and the `X-Forwarded-For` values in
    /// the order they arrived (several header lines count as one list).
    ///
    /// From the peer leftwards, each trusted proxy vouches for the entry to its left; the first
    /// address that is not a trusted proxy is the client. An entry that is not an address ends
    /// the walk at the proxy that wrote it. If every entry is a trusted proxy, the leftmost is
    /// the client.
    ///
    /// ```
    /// # use keycard::proxies::TrustedProxies;
    /// let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
    /// let peer = "10.0.0.2".parse().unwrap();
    /// // The client wrote 1.2.3.4 itself; the load balancer appended the address it saw.
    /// let client = proxies.client_address(peer, ["1.2.3.4, 203.0.113.9"]);
    /// assert_eq!(client, "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
    /// ```
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for.into_iter().flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(addr) = parse_entry(entry) else { break };
            client = addr;
            if !self.contains(addr) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let addr = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(canonical(addr))
}

/// An IPv4 address that reached an IPv6 socket (`::ffff:1.2.3.4`) as the IPv4 address it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// A parse failure of [`TrustedProxies`]: the entry that is neither an address nor a range.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR range (such as 10.0.0.7 or 10.0.0.0/8)")]
pub struct BadProxy(String);

impl FromStr for TrustedProxies {
    type Err = BadProxy;

    /// Comma-separated addresses and CIDR ranges: `127.0.0.1, 10.0.0.0/8, fd00::/8`.
    fn from_str(s: &str) -> Result<Self, BadProxy> {
        s.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| BadProxy(e.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() {
        let proxies: TrustedProxies = "127.0.0.1, 10.0.0.0/8, fd00::/8".parse().unwrap();
        // (peer, X-Forwarded-For lines, the client)
        let table: &[(&str, &[&str], &str)] = &[
            // No proxy in front: the header is the client's own words.
            ("203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
            ("203.0.113.9", &[], "203.0.113.9"),
            // An appending proxy: whatever the client wrote stays to the left.
            ("10.0.0.2", &["203.0.113.9"], "203.0.113.9"),
            ("10.0.0.2", &["1.2.3.4, 203.0.113.9"], "203.0.113.9"),
            ("10.0.0.2", &["1.2.3.4", "203.0.113.9"], "203.0.113.9"),
            // Two proxies of ours, the outer one appended too.
            ("127.0.0.1", &["6.6.6.6, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),
            // The client spoofs an address inside our own ranges: it is still the rightmost
            // untrusted entry that counts.
            ("10.0.0.2", &["10.9.9.9, 203.0.113.9"], "203.0.113.9"),
            // A trusted proxy with no header, or every entry ours: the leftmost.
            ("10.0.0.2", &[], "10.0.0.2"),
            ("10.0.0.2", &["10.0.0.5, 10.0.0.6"], "10.0.0.5"),
            // Garbage ends the walk at the proxy that reported it.
            ("10.0.0.2", &["1.2.3.4, not-an-address"], "10.0.0.2"),
            ("10.0.0.2", &["1.2.3.4, 10.0.0.7, unknown"], "10.0.0.2"),
            ("10.0.0.2", &["203.0.113.9,"], "10.0.0.2"),
            // Ports and IPv6.
            ("10.0.0.2", &["203.0.113.9:4711"], "203.0.113.9"),
            ("fd00::1", &["[2001:db8::7]:443"], "2001:db8::7"),
            ("fd00::1", &["2001:db8::7, fd00::2"], "2001:db8::7"),
            // An IPv4 peer on an IPv6 socket is the IPv4 address.
            ("::ffff:10.0.0.2", &["203.0.113.9"], "203.0.113.9"),
            ("::ffff:203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
        ];
        for (peer, lines, client) in table {
            let got = proxies.client_address(ip(peer), lines.iter().copied());
            assert_eq!(got, ip(client), "peer {peer}, X-Forwarded-For {lines:?}");
        }
    }

    #[test]
    fn with_no_trusted_proxy_the_header_is_never_read() {
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert_eq!(none.client_address(ip("127.0.0.1"), ["1.2.3.4"]), ip("127.0.0.1"));
    }

    #[test]
    fn proxies_are_addresses_or_ranges() {
        let proxies: TrustedProxies = " 192.168.1.7 ,10.0.0.0/8,,::1".parse().unwrap();
        assert!(proxies.contains(ip("192.168.1.7")));
        assert!(!proxies.contains(ip("192.168.1.8")));
        assert!(proxies.contains(ip("10.255.0.1")));
        assert!(proxies.contains(ip("::1")));
        // A range written with host bits set means its network.
        assert!("10.1.2.3/8".parse::<TrustedProxies>().unwrap().contains(ip("10.200.0.1")));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.1-10.0.0.9", "*"] {
            let err = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
