//! Source-range lists as sets of addresses.
//!
//! "Was the allowlist widened?" is a question about addresses, not strings:
//! `10.0.0.0/8` → `10.0.0.0/8, 10.1.0.0/16` changes the text and admits
//! nothing new, while `10.0.0.0/8` → `10.0.0.0/7` admits 16 million more
//! addresses. [`AddressSet`] holds merged address intervals per family, so
//! union, difference and "what exactly was added" are exact, and are rendered
//! back as the smallest list of CIDR blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

/// An entry of a source-range list that is not an address or network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvalidEntry {
    /// The entry as written.
    pub entry: String,
    /// Why it was refused.
    pub reason: String,
}

/// A parsed source-range annotation value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceRanges {
    /// Networks, in the order written, host bits cleared.
    pub networks: Vec<IpNet>,
    /// Entries written with host bits set (`10.0.0.1/8`), which controllers
    /// read as their network; kept so a report can show the surprise.
    pub host_bits_set: Vec<String>,
    /// Entries that are not networks. Some controllers reject the whole list
    /// for one bad entry, so these are reported, never dropped.
    pub invalid: Vec<InvalidEntry>,
}

impl SourceRanges {
    /// Parses a list separated by commas and/or whitespace. Bare addresses
    /// are single-host networks. Empty entries are ignored.
    pub fn parse(value: &str) -> Self {
        let mut out = Self::default();
        for entry in value.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                if net.trunc() != net {
                    out.host_bits_set.push(entry.to_owned());
                }
                out.networks.push(net.trunc());
            } else if let Ok(addr) = entry.parse::<IpAddr>() {
                out.networks.push(IpNet::from(addr));
            } else {
                let reason = match entry.split_once('/') {
                    Some((addr, len)) if addr.parse::<IpAddr>().is_ok() => format!("invalid prefix length /{len}"),
                    _ => "not an IP address or CIDR network".to_owned(),
                };
                out.invalid.push(InvalidEntry { entry: entry.to_owned(), reason });
            }
        }
        out
    }

    /// The addresses the list names.
    pub fn addresses(&self) -> AddressSet {
        AddressSet::from_networks(&self.networks)
    }
}

/// A set of IPv4 and IPv6 addresses as sorted, disjoint, non-adjacent
/// inclusive intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressSet {
    v4: Vec<(u128, u128)>,
    v6: Vec<(u128, u128)>,
}

const V4_BITS: u32 = 32;
const V6_BITS: u32 = 128;

impl AddressSet {
    /// No addresses.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every IPv4 and IPv6 address.
    pub fn everything() -> Self {
        Self { v4: vec![(0, u128::from(u32::MAX))], v6: vec![(0, u128::MAX)] }
    }

    /// The union of `networks`.
    pub fn from_networks(networks: &[IpNet]) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in networks {
            match net {
                IpNet::V4(n) => v4.push((u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast())))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Self { v4: normalise(v4), v6: normalise(v6) }
    }

    /// True if the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// True if the set holds every IPv4 or every IPv6 address.
    pub fn covers_a_whole_family(&self) -> bool {
        self.v4 == [(0, u128::from(u32::MAX))] || self.v6 == [(0, u128::MAX)]
    }

    /// True if every address of `other` is in `self`.
    pub fn contains(&self, other: &AddressSet) -> bool {
        other.difference(self).is_empty()
    }

    /// The addresses in `self` and not in `other`.
    pub fn difference(&self, other: &AddressSet) -> AddressSet {
        Self { v4: subtract(&self.v4, &other.v4), v6: subtract(&self.v6, &other.v6) }
    }

    /// The fewest CIDR networks that cover exactly this set, IPv4 first.
    pub fn to_networks(&self) -> Vec<IpNet> {
        let mut out = Vec::new();
        for &(start, end) in &self.v4 {
            for (addr, prefix) in range_to_cidrs(start, end, V4_BITS) {
                // Addresses in v4 intervals fit in 32 bits by construction.
                let addr = Ipv4Addr::from(u32::try_from(addr).unwrap_or(u32::MAX));
                out.extend(Ipv4Net::new(addr, prefix).ok().map(IpNet::V4));
            }
        }
        for &(start, end) in &self.v6 {
            for (addr, prefix) in range_to_cidrs(start, end, V6_BITS) {
                out.extend(Ipv6Net::new(Ipv6Addr::from(addr), prefix).ok().map(IpNet::V6));
            }
        }
        out
    }
}

/// Sorts and merges overlapping or adjacent intervals.
fn normalise(mut ranges: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    ranges.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// `a` minus `b`, both normalised.
fn subtract(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    for &(start, end) in a {
        let mut cursor = Some(start);
        for &(b_start, b_end) in b {
            let Some(from) = cursor else { break };
            if b_end < from || b_start > end {
                continue;
            }
            if b_start > from {
                out.push((from, b_start - 1));
            }
            cursor = if b_end >= end { None } else { Some(b_end + 1) };
        }
        if let Some(from) = cursor {
            out.push((from, end));
        }
    }
    out
}

/// Splits `start..=end` into aligned CIDR blocks, largest first.
fn range_to_cidrs(mut start: u128, end: u128, bits: u32) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    loop {
        // Host bits of the largest block that starts at `start` and ends by `end`.
        let mut host = if start == 0 { bits } else { start.trailing_zeros().min(bits) };
        let last = loop {
            let span = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
            match start.checked_add(span) {
                Some(last) if last <= end => break last,
                _ => host -= 1,
            }
        };
        // `host` is at most `bits` (≤ 128), so the prefix fits in a u8.
        out.push((start, u8::try_from(bits - host).unwrap_or(0)));
        if last >= end {
            return out;
        }
        start = last + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &str) -> AddressSet {
        SourceRanges::parse(list).addresses()
    }

    fn nets(list: &str) -> Vec<String> {
        set(list).to_networks().iter().map(ToString::to_string).collect()
    }

    fn added(old: &str, new: &str) -> Vec<String> {
        set(new).difference(&set(old)).to_networks().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn widening_is_network_math_not_string_compare() {
        // Table: old list, new list, exactly the ranges newly admitted.
        let cases: &[(&str, &str, &[&str])] = &[
            ("10.0.0.0/8", "10.0.0.0/8,10.1.0.0/16", &[]),
            ("10.0.0.0/8", "10.0.0.0/7", &["11.0.0.0/8"]),
            (
                "10.0.0.0/8",
                "0.0.0.0/0",
                &[
                    "0.0.0.0/5",
                    "8.0.0.0/7",
                    "11.0.0.0/8",
                    "12.0.0.0/6",
                    "16.0.0.0/4",
                    "32.0.0.0/3",
                    "64.0.0.0/2",
                    "128.0.0.0/1",
                ],
            ),
            // Adjacent networks merge: nothing new.
            ("10.0.0.0/25,10.0.0.128/25", "10.0.0.0/24", &[]),
            // Overlapping: only the part outside.
            ("192.168.0.0/24", "192.168.0.128/24, 192.168.1.0/25", &["192.168.1.0/25"]),
            // Single hosts, written bare or as /32.
            ("203.0.113.7", "203.0.113.7/32,203.0.113.8", &["203.0.113.8/32"]),
            // Host bits set read as the network.
            ("10.0.0.0/8", "10.9.9.9/8", &[]),
            // IPv6, and a v6 /0 that admits everything v6.
            ("2001:db8::/32", "2001:db8::/31", &["2001:db9::/32"]),
            (
                "2001:db8::/32",
                "::/0",
                &[
                    "::/3",
                    "2000::/16",
                    "2001::/21",
                    "2001:800::/22",
                    "2001:c00::/24",
                    "2001:d00::/25",
                    "2001:d80::/27",
                    "2001:da0::/28",
                    "2001:db0::/29",
                    "2001:db9::/32",
                    "2001:dba::/31",
                    "2001:dbc::/30",
                    "2001:dc0::/26",
                    "2001:e00::/23",
                    "2001:1000::/20",
                    "2001:2000::/19",
                    "2001:4000::/18",
                    "2001:8000::/17",
                    "2002::/15",
                    "2004::/14",
                    "2008::/13",
                    "2010::/12",
                    "2020::/11",
                    "2040::/10",
                    "2080::/9",
                    "2100::/8",
                    "2200::/7",
                    "2400::/6",
                    "2800::/5",
                    "3000::/4",
                    "4000::/2",
                    "8000::/1",
                ],
            ),
            // Families are separate: adding v6 does not hide behind v4.
            ("0.0.0.0/0", "0.0.0.0/0,::/0", &["::/0"]),
            // Whitespace and empty entries are ignored.
            (" 10.0.0.0/8 ,, ", "10.0.0.0/8,\n", &[]),
        ];
        for (old, new, expected) in cases {
            assert_eq!(added(old, new), *expected, "{old} -> {new}");
        }
    }

    #[test]
    fn narrowing_is_the_reverse_difference() {
        assert_eq!(added("10.0.0.0/7", "10.0.0.0/8"), Vec::<String>::new());
        assert_eq!(set("10.0.0.0/7").difference(&set("10.0.0.0/8")).to_networks()[0].to_string(), "11.0.0.0/8");
    }

    #[test]
    fn everything_round_trips_to_the_two_zero_networks() {
        assert_eq!(
            AddressSet::everything().to_networks().iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["0.0.0.0/0", "::/0"]
        );
        assert_eq!(nets("0.0.0.0/1,128.0.0.0/1"), ["0.0.0.0/0"]);
        assert!(set("10.0.0.0/8").contains(&set("10.1.2.3")));
        assert!(!set("10.0.0.0/8").contains(&set("11.0.0.0/32")));
    }

    #[test]
    fn invalid_and_host_bit_entries_are_reported() {
        let parsed = SourceRanges::parse("10.0.0.1/8, 300.1.1.1, 10.0.0.0/33, example.com");
        assert_eq!(parsed.host_bits_set, ["10.0.0.1/8"]);
        let invalid: Vec<(&str, &str)> = parsed.invalid.iter().map(|i| (i.entry.as_str(), i.reason.as_str())).collect();
        assert_eq!(
            invalid,
            [
                ("300.1.1.1", "not an IP address or CIDR network"),
                ("10.0.0.0/33", "invalid prefix length /33"),
                ("example.com", "not an IP address or CIDR network"),
            ]
        );
        assert_eq!(parsed.networks.len(), 1);
    }
}
