//! Who a request comes from. Behind a reverse proxy every request arrives from the proxy's
//! address; the client's is in `X-Forwarded-For`, which anyone can write, so it is read only when
//! the peer is a proxy the operator trusts (`--trusted-proxies`), right to left, and the first
//! address that is not itself a trusted proxy is the client.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Parses `--trusted-proxies`: CIDR ranges (`10.0.0.0/8`) or single addresses, separated by
/// commas or spaces.
pub fn parse_trusted(text: &str) -> Result<Vec<IpNet>, String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{part:?} is not an address or a CIDR range (like 10.0.0.0/8)"))
        })
        .collect()
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not a trusted proxy.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse::<IpAddr>().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|address| !is_trusted(address))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let trusted = parse_trusted("10.0.0.0/8, 192.168.1.1").unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.7".parse().unwrap();
        let forwarded = headers("198.51.100.1, 198.51.100.2, 10.9.9.9");
        // The right-most address that is not a proxy: what the trusted proxy saw.
        assert_eq!(
            client_address(proxy, &forwarded, &trusted),
            "198.51.100.2".parse::<IpAddr>().unwrap()
        );
        // Anyone else's header is ignored.
        assert_eq!(client_address(stranger, &forwarded, &trusted), stranger);
        // A trusted proxy without the header is the client.
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_address(proxy, &headers("not an address"), &trusted), proxy);
    }

    #[test]
    fn trusted_proxies_are_ranges_or_addresses() {
        assert_eq!(parse_trusted("").unwrap(), []);
        assert_eq!(parse_trusted("127.0.0.1 ::1").unwrap().len(), 2);
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("proxy.example").is_err());
    }
}
