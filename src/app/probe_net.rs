//! The network path of the probes: kernel TCP, or with `--xdp` the AF_XDP stack, with the same
//! flags on every probe (`hotwire ws|http|fix … --xdp IFACE --local-ip A.B.C.D/NN`).

use std::net::{Ipv4Addr, SocketAddr};

use super::net::{BaseStream, Net};
use crate::service::Dial;

/// `--xdp`, `--local-ip`, `--gateway`, `--queue`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProbeNet {
    /// Connect over the AF_XDP stack on this interface instead of kernel TCP (feature `xdp`).
    #[arg(long, value_name = "IFACE", requires = "local_ip")]
    pub xdp: Option<String>,
    /// The XDP stack's address, `A.B.C.D/NN` (with `--xdp`).
    #[arg(long, value_name = "A.B.C.D/NN", requires = "xdp")]
    pub local_ip: Option<String>,
    /// The XDP stack's next hop for off-link servers (with `--xdp`).
    #[arg(long, value_name = "IP", requires = "xdp")]
    pub gateway: Option<Ipv4Addr>,
    /// The interface queue the XDP socket binds (with `--xdp`; default 0).
    #[arg(long, value_name = "N", requires = "xdp")]
    pub queue: Option<u32>,
}

impl ProbeNet {
    /// Opens the network the flags describe (an XDP stack opened for this probe alone; no
    /// fallback: a probe asked for AF_XDP reports why it cannot have it).
    pub fn open(&self) -> Result<Net, String> {
        let Some(iface) = &self.xdp else {
            return Ok(Net::Kernel);
        };
        #[cfg(feature = "xdp")]
        {
            let cidr = self.local_ip.as_deref().unwrap_or_default();
            let (ip, len) = crate::xdp::parse_cidr(cidr).map_err(|e| format!("--local-ip: {e}"))?;
            let mut cfg = crate::xdp::XdpConfig::new(iface.clone(), ip, len);
            cfg.gateway = self.gateway;
            cfg.queue = self.queue.unwrap_or(0);
            crate::xdp::XdpStack::open(&cfg)
                .map(Net::Xdp)
                .map_err(|e| format!("AF_XDP on {iface}: {e}"))
        }
        #[cfg(not(feature = "xdp"))]
        {
            Err(format!(
                "--xdp {iface} needs a build with the `xdp` feature"
            ))
        }
    }

    /// Opens the network and starts a connection to `addr` on it.
    pub fn connect(&self, addr: SocketAddr) -> Result<BaseStream, String> {
        let mut net = self.open()?;
        let path = net.name();
        net.dial(addr)
            .map_err(|e| format!("connect to {addr} over {path}: {e}"))
    }
}
