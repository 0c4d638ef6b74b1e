//! `[network]`: the kernel path or AF_XDP, and its validation.

use serde::Deserialize;
use toml::Spanned;

use super::super::{ConfigError, Locator, NetworkPath, Steering, XdpSettings};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) path: Spanned<String>,
    pub(super) interface: Option<Spanned<String>>,
    pub(super) queue: Option<Spanned<i64>>,
    pub(super) local_ip: Option<Spanned<String>>,
    pub(super) gateway: Option<Spanned<String>>,
    pub(super) steering: Option<Spanned<String>>,
    pub(super) ports: Option<Spanned<String>>,
    pub(super) attach: Option<Spanned<String>>,
    pub(super) bind: Option<Spanned<String>>,
    pub(super) umem_frames: Option<Spanned<i64>>,
    pub(super) frame_size: Option<Spanned<i64>>,
    pub(super) mtu: Option<Spanned<i64>>,
    pub(super) multi_buffer: Option<bool>,
    pub(super) ack_delay_us: Option<Spanned<i64>>,
    pub(super) huge_pages: Option<bool>,
    pub(super) fallback: Option<bool>,
}

impl RawNetwork {
    pub(super) fn validate(&self, loc: &Locator<'_>) -> Result<NetworkPath, ConfigError> {
        let xdp_keys = self.interface.is_some() || self.local_ip.is_some() || self.queue.is_some();
        match self.path.get_ref().as_str() {
            "kernel" if xdp_keys => Err(loc.at(
                &self.path,
                "network.path is \"kernel\" but XDP settings (interface, queue, local_ip) are given \
                 (expected path = \"xdp\")"
                    .into(),
            )),
            "kernel" => Ok(NetworkPath::Kernel),
            "xdp" => self.validate_xdp(loc).map(NetworkPath::Xdp),
            other => Err(loc.at(
                &self.path,
                format!("network.path: unknown path {other:?} (expected \"kernel\" or \"xdp\")"),
            )),
        }
    }

    pub(super) fn validate_xdp(&self, loc: &Locator<'_>) -> Result<XdpSettings, ConfigError> {
        let interface = match &self.interface {
            Some(i) if !i.get_ref().is_empty() && i.get_ref().len() < 16 => i.get_ref().clone(),
            Some(i) => {
                return Err(loc.at(
                    i,
                    "network.interface: expected an interface name of 1 to 15 characters".into(),
                ))
            }
            None => {
                return Err(loc.at(
                    &self.path,
                    "network.path = \"xdp\" needs network.interface".into(),
                ))
            }
        };
        let (local_ip, prefix_len) = match &self.local_ip {
            Some(v) => {
                parse_cidr(v.get_ref()).map_err(|e| loc.at(v, format!("network.local_ip: {e}")))?
            }
            None => {
                return Err(loc.at(
                    &self.path,
                    "network.path = \"xdp\" needs network.local_ip (\"A.B.C.D/NN\")".into(),
                ))
            }
        };
        let gateway = match &self.gateway {
            None => None,
            Some(g) => Some(g.get_ref().parse().map_err(|_| {
                loc.at(
                    g,
                    format!("network.gateway: {:?} is not an IPv4 address", g.get_ref()),
                )
            })?),
        };
        let queue = match &self.queue {
            None => 0,
            Some(q) => u32::try_from(*q.get_ref())
                .ok()
                .filter(|q| *q < 4096)
                .ok_or_else(|| {
                    loc.at(q, format!("network.queue: {} is not 0..4095", q.get_ref()))
                })?,
        };
        let steering = match self.steering.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "dedicated-ip")) => Steering::DedicatedIp,
            Some((_, "shared-ip")) => Steering::SharedIp,
            Some((s, other)) => {
                return Err(loc.at(
                    s,
                    format!(
                    "network.steering: unknown mode {other:?} (expected dedicated-ip or shared-ip)"
                ),
                ))
            }
        };
        let ports = match &self.ports {
            None if steering == Steering::SharedIp => return Err(loc.at(
                self.steering.as_ref().unwrap_or(&self.path),
                "network.steering = \"shared-ip\" needs network.ports (\"FIRST-LAST\", a range \
                     reserved for the stack)"
                    .into(),
            )),
            None => (32768, 60999),
            Some(p) => {
                parse_ports(p.get_ref()).map_err(|e| loc.at(p, format!("network.ports: {e}")))?
            }
        };
        let native = match self.attach.as_ref().map(|a| (a, a.get_ref().as_str())) {
            None | Some((_, "native")) => true,
            Some((_, "generic")) => false,
            Some((a, other)) => {
                return Err(loc.at(
                    a,
                    format!("network.attach: unknown mode {other:?} (expected native or generic)"),
                ))
            }
        };
        let zero_copy = match self.bind.as_ref().map(|b| (b, b.get_ref().as_str())) {
            None | Some((_, "copy")) => false,
            Some((_, "zero-copy")) => true,
            Some((b, other)) => {
                return Err(loc.at(
                    b,
                    format!("network.bind: unknown mode {other:?} (expected copy or zero-copy)"),
                ))
            }
        };
        let umem_frames = match &self.umem_frames {
            None => 4096,
            Some(f) => u32::try_from(*f.get_ref())
                .ok()
                .filter(|f| (64..=1 << 20).contains(f) && f.is_power_of_two())
                .ok_or_else(|| {
                    loc.at(
                        f,
                        format!(
                            "network.umem_frames: {} is not a power of two in 64..=1048576",
                            f.get_ref()
                        ),
                    )
                })?,
        };
        let frame_size = match &self.frame_size {
            None => 4096,
            Some(f) => u32::try_from(*f.get_ref())
                .ok()
                .filter(|f| matches!(f, 2048 | 4096))
                .ok_or_else(|| {
                    loc.at(
                        f,
                        format!(
                            "network.frame_size: {} (expected 2048 or 4096)",
                            f.get_ref()
                        ),
                    )
                })?,
        };
        // A frame holds the packet after the kernel's 256-byte headroom, Ethernet header included;
        // in multi-buffer mode a packet may span up to MAX_FRAGS frames.
        let multi_buffer = self.multi_buffer.unwrap_or(true);
        let (max_mtu, holds) = if multi_buffer {
            (
                max_mtu_multi_buffer(frame_size),
                format!("{MAX_FRAGS} {frame_size}-byte frames hold with multi_buffer"),
            )
        } else {
            (
                i64::from(frame_size) - 256 - 14,
                format!(
                    "a {frame_size}-byte frame holds the packet after 270 bytes of headroom and \
                     header; multi_buffer = true spans frames"
                ),
            )
        };
        let mtu = match &self.mtu {
            None => None,
            Some(m) => Some(
                u32::try_from(*m.get_ref())
                    .ok()
                    .filter(|v| (576..=max_mtu).contains(&i64::from(*v)))
                    .ok_or_else(|| {
                        loc.at(
                            m,
                            format!(
                                "network.mtu: {} (expected 576..={max_mtu}: {holds})",
                                m.get_ref()
                            ),
                        )
                    })?,
            ),
        };
        let ack_delay_us = match &self.ack_delay_us {
            None => 1000,
            Some(d) => u32::try_from(*d.get_ref())
                .ok()
                .filter(|d| *d <= 500_000)
                .ok_or_else(|| {
                    loc.at(
                        d,
                        format!(
                            "network.ack_delay_us: {} (expected 0..=500000; 0 acknowledges at once)",
                            d.get_ref()
                        ),
                    )
                })?,
        };
        Ok(XdpSettings {
            interface,
            queue,
            local_ip,
            prefix_len,
            gateway,
            steering,
            ports,
            native,
            zero_copy,
            umem_frames,
            frame_size,
            mtu,
            multi_buffer,
            ack_delay_us,
            huge_pages: self.huge_pages.unwrap_or(true),
            fallback: self.fallback.unwrap_or(true),
        })
    }
}

/// The most frames a packet spans in multi-buffer mode (the `xdp` module's `MAX_FRAGS`; this
/// module builds without that feature).
pub(super) const MAX_FRAGS: i64 = 16;

/// The largest MTU [`MAX_FRAGS`] frames hold (the `xdp` module's `max_mtu_multi_buffer`).
pub(super) fn max_mtu_multi_buffer(frame_size: u32) -> i64 {
    (MAX_FRAGS * (i64::from(frame_size) - 256) - 14).min(65535)
}

#[cfg(all(test, feature = "xdp"))]
#[test]
fn multi_buffer_limits_agree_with_the_xdp_module() {
    assert_eq!(MAX_FRAGS as usize, crate::xdp::MAX_FRAGS);
    for size in [2048, 4096] {
        assert_eq!(
            max_mtu_multi_buffer(size) as usize,
            crate::xdp::max_mtu_multi_buffer(size)
        );
    }
}

/// Parses `A.B.C.D/NN`.
pub(super) fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not A.B.C.D/NN"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
    let len = len
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=32).contains(l))
        .ok_or_else(|| format!("prefix length {len:?} is not 1..32"))?;
    Ok((ip, len))
}

/// Parses `FIRST-LAST` (1024 <= FIRST <= LAST).
pub(super) fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not FIRST-LAST"))?;
    let first: u16 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a port"))?;
    let last: u16 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a port"))?;
    if first < 1024 || first > last {
        return Err(format!("{s:?}: expected 1024 <= FIRST <= LAST"));
    }
    Ok((first, last))
}
