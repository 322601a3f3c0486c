//! A minimal route-netlink (rtnetlink) client over a raw `NETLINK_ROUTE` socket: the handful of
//! link, address and route requests task networking needs, each one acknowledged by the kernel.
//! A socket talks to the network namespace it was opened in, so a thread that has entered a task's
//! namespace can configure it without running `ip`.
//!
//! Written here rather than taken from a crate: the agent sends six fixed request shapes and
//! never parses a dump, which is a few dozen lines over `nix`'s safe socket calls; the netlink
//! crates bring a much larger typed model for that.

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

// Kernel ABI constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h).
const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 0x1;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;

/// A request body: a fixed header struct followed by attributes.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    /// `struct ifinfomsg`.
    fn ifinfo(index: u32, flags: u32, change: u32) -> Body {
        let mut b = Body::default();
        b.ifinfo_into(index, flags, change);
        b
    }

    fn ifinfo_into(&mut self, index: u32, flags: u32, change: u32) {
        self.0.extend([AF_UNSPEC, 0]);
        self.0.extend(0u16.to_ne_bytes());
        self.0.extend(index.to_ne_bytes());
        self.0.extend(flags.to_ne_bytes());
        self.0.extend(change.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Body {
        let len = 4 + data.len();
        self.0.extend((len as u16).to_ne_bytes());
        self.0.extend(kind.to_ne_bytes());
        self.0.extend(data);
        self.pad();
        self
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Body {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    /// Starts a nested attribute; `end` closes it.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.0.len();
        self.0.extend(0u16.to_ne_bytes());
        self.0.extend(kind.to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Pads to the 4-byte alignment netlink attributes keep.
    fn pad(&mut self) {
        let padded = (self.0.len() + 3) & !3;
        self.0.resize(padded, 0);
    }
}

/// A route-netlink socket in the network namespace of the thread that opened it.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            socket::SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(nix_io)?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(nix_io)?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sends one request and waits for the kernel's acknowledgement.
    fn request(&mut self, kind: u16, flags: u16, body: &Body) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = (NLMSG_HDR_LEN + body.0.len()) as u32;
        let mut msg = Vec::with_capacity(len as usize);
        msg.extend(len.to_ne_bytes());
        msg.extend(kind.to_ne_bytes());
        msg.extend((flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend(seq.to_ne_bytes());
        msg.extend(0u32.to_ne_bytes());
        msg.extend(&body.0);
        socket::send(self.fd.as_raw_fd(), &msg, MsgFlags::empty()).map_err(nix_io)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n =
                socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(nix_io)?;
            let mut at = 0;
            while at + NLMSG_HDR_LEN <= n {
                let field =
                    |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
                let msg_len = field(at) as usize;
                let msg_kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let msg_seq = field(at + 8);
                if msg_len < NLMSG_HDR_LEN || at + msg_len > n {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink reply",
                    ));
                }
                if msg_kind == NLMSG_ERROR && msg_seq == seq && msg_len >= NLMSG_HDR_LEN + 4 {
                    let code = field(at + NLMSG_HDR_LEN) as i32;
                    return match code {
                        0 => Ok(()),
                        c => Err(io::Error::from_raw_os_error(-c)),
                    };
                }
                at += (msg_len + 3) & !3;
            }
        }
    }

    /// Creates a link of `kind` (e.g. `bridge`) named `name`.
    pub fn add_link(&mut self, name: &str, kind: &str) -> io::Result<()> {
        let mut b = Body::ifinfo(0, 0, 0);
        b.attr_str(IFLA_IFNAME, name);
        let info = b.begin(IFLA_LINKINFO);
        b.attr(IFLA_INFO_KIND, kind.as_bytes());
        b.end(info);
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &b)
    }

    /// Creates a veth pair: `name` here, up and enslaved to the link `master`, and `peer` in the
    /// network namespace `peer_netns` (an open namespace file).
    pub fn add_veth(
        &mut self,
        name: &str,
        master: u32,
        peer: &str,
        peer_netns: RawFd,
    ) -> io::Result<()> {
        let mut b = Body::ifinfo(0, IFF_UP, IFF_UP);
        b.attr_str(IFLA_IFNAME, name);
        b.attr(IFLA_MASTER, &master.to_ne_bytes());
        let info = b.begin(IFLA_LINKINFO);
        b.attr(IFLA_INFO_KIND, b"veth");
        let data = b.begin(IFLA_INFO_DATA);
        let peer_at = b.begin(VETH_INFO_PEER);
        b.ifinfo_into(0, 0, 0);
        b.attr_str(IFLA_IFNAME, peer);
        b.attr(IFLA_NET_NS_FD, &(peer_netns as u32).to_ne_bytes());
        b.end(peer_at);
        b.end(data);
        b.end(info);
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &b)
    }

    /// Brings the link with this index up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        self.request(RTM_NEWLINK, 0, &Body::ifinfo(index, IFF_UP, IFF_UP))
    }

    /// Deletes the link named `name`.
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut b = Body::ifinfo(0, 0, 0);
        b.attr_str(IFLA_IFNAME, name);
        self.request(RTM_DELLINK, 0, &b)
    }

    /// Adds `ip/prefix_len` to the link with this index.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        let mut b = Body(vec![AF_INET, prefix_len, 0, RT_SCOPE_UNIVERSE]);
        b.0.extend(index.to_ne_bytes());
        b.attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &b)
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut b = Body(vec![
            AF_INET,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        b.0.extend(0u32.to_ne_bytes());
        b.attr(RTA_GATEWAY, &gateway.octets());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &b)
    }
}

/// The index of the link named `name` in the calling thread's network namespace.
pub fn link_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok().filter(|i| *i > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested_lengths_cover_their_children() {
        let mut b = Body::ifinfo(7, IFF_UP, IFF_UP);
        assert_eq!(b.0.len(), 16);
        assert_eq!(&b.0[4..8], &7u32.to_ne_bytes());
        b.attr_str(IFLA_IFNAME, "vb-1");
        // 4 header + 5 bytes ("vb-1\0") = 9, padded to 12.
        assert_eq!(b.0.len(), 16 + 12);
        assert_eq!(&b.0[16..18], &9u16.to_ne_bytes());
        let at = b.begin(IFLA_LINKINFO);
        b.attr(IFLA_INFO_KIND, b"veth");
        b.end(at);
        assert_eq!(&b.0[at..at + 2], &12u16.to_ne_bytes());
        assert_eq!(b.0.len() % 4, 0);
    }
}
