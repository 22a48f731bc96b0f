//! TCP listener (SO_REUSEPORT, one per shard on the same port) and streams.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use socket2::{Domain, Protocol, Socket, Type};

pub struct Listener(glommio::net::TcpListener);
pub struct Stream(glommio::net::TcpStream);

/// Fail if another socket already listens on `addr`. SO_REUSEPORT would
/// otherwise let a second broker share the port silently. SO_REUSEADDR keeps
/// connections in TIME_WAIT from a previous run from counting. Only binds:
/// a bind conflicts with a listening socket all the same, and a probe that
/// listened would accept (then reset) clients that connect during start-up.
pub fn probe_exclusive(addr: SocketAddr) -> io::Result<()> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())
}

/// How many sockets listen on `addr` (the same port, and the same address
/// or a wildcard), by the kernel's tables (`/proc/net/tcp`, `tcp6`). After
/// its shards bind, a broker that counts more listeners than shards shares
/// the port with another process: SO_REUSEPORT let both bind, because both
/// passed `probe_exclusive` before either bound.
pub fn count_listeners(addr: SocketAddr) -> io::Result<usize> {
    const LISTEN: &str = "0A";
    let mut n = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{table}: {e}"))),
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            if *state != LISTEN {
                continue;
            }
            if parse_proc_addr(local).is_some_and(|a| same_listener(a, addr)) {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// `0100007F:2382` (IPv4, the address's bytes as a little-endian word) or
/// the 32-digit IPv6 form (four such words), as `/proc/net/tcp*` shows them.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_le_bytes(),
        )
    };
    let ip: std::net::IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(word(0)?).into(),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            std::net::Ipv6Addr::from(b).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Would a listener on `a` take connections meant for `ours`? Only one of
/// the same family: an IPv6 socket that binds `[::]` beside our IPv4 one is
/// IPv6-only (a dual-stack one would have failed the probe).
fn same_listener(a: SocketAddr, ours: SocketAddr) -> bool {
    let canon = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    let (x, y) = (canon(a.ip()), canon(ours.ip()));
    a.port() == ours.port()
        && x.is_ipv4() == y.is_ipv4()
        && (x == y || x.is_unspecified() || y.is_unspecified())
}

impl Listener {
    /// Bind with SO_REUSEPORT so every shard can listen on the same address and
    /// the kernel spreads incoming connections across shards.
    pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<Self> {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(backlog)?;
        // SAFETY: the fd comes from a socket we own and hand over exactly once.
        Ok(Self(unsafe {
            glommio::net::TcpListener::from_raw_fd(s.into_raw_fd())
        }))
    }

    pub async fn accept(&self) -> io::Result<Stream> {
        self.0.accept().await.map(Stream).map_err(|e| e.into())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr().map_err(|e| e.into())
    }
}

impl Stream {
    /// Connect to `addr`, giving up after `timeout` (never zero: glommio refuses it).
    pub async fn connect(addr: SocketAddr, timeout: std::time::Duration) -> io::Result<Self> {
        let timeout = timeout.max(std::time::Duration::from_millis(1));
        glommio::net::TcpStream::connect_timeout(addr, timeout)
            .await
            .map(Stream)
            .map_err(|e| e.into())
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr().map_err(|e| e.into())
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.0.set_nodelay(on).map_err(|e| e.into())
    }

    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf).await
    }

    /// Write straight from `buf` (the send is issued on the caller's memory; no
    /// user-space staging copy).
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).await
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.0.flush().await
    }

    /// Split into halves for a concurrent reader and writer on one shard.
    pub fn split(self) -> (ReadHalf, WriteHalf) {
        let (r, w) = futures_lite::io::split(self.0);
        (ReadHalf(r), WriteHalf(w))
    }
}

pub struct ReadHalf(futures_lite::io::ReadHalf<glommio::net::TcpStream>);
pub struct WriteHalf(futures_lite::io::WriteHalf<glommio::net::TcpStream>);

impl ReadHalf {
    /// Read whatever is available (at least one byte unless at EOF, which
    /// returns 0), so a reader can pull several frames with one call.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).await
    }

    pub async fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf).await
    }
}

impl WriteHalf {
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).await
    }
    pub async fn flush(&mut self) -> io::Result<()> {
        self.0.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reuseport_listener(addr: SocketAddr) -> Socket {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).unwrap();
        s.set_reuse_address(true).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&addr.into()).unwrap();
        s.listen(16).unwrap();
        s
    }

    #[test]
    fn listeners_on_a_port_are_counted_from_the_kernels_table() {
        assert_eq!(
            parse_proc_addr("0100007F:2382"),
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000:1F90"),
            Some("[::1]:8080".parse().unwrap())
        );
        assert_eq!(parse_proc_addr("zz:1"), None);
        assert!(same_listener(
            "0.0.0.0:9092".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        ));
        assert!(!same_listener(
            "127.0.0.2:9092".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        ));
        assert!(!same_listener(
            "[::]:9092".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        ));
        assert!(same_listener(
            "[::ffff:127.0.0.1]:9092".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        ));
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        assert_eq!(count_listeners(addr).unwrap(), 0);
        let a = reuseport_listener(addr);
        assert_eq!(count_listeners(addr).unwrap(), 1);
        // What a second broker's shard does when both passed the probe.
        let b = reuseport_listener(addr);
        assert_eq!(count_listeners(addr).unwrap(), 2);
        drop((a, b));
    }

    #[test]
    fn probe_sees_a_listener_and_accepts_no_one() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        // Nobody there: the probe passes and leaves nothing listening.
        probe_exclusive(addr).unwrap();
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the probe listened"
        );
        // A broker's SO_REUSEPORT listener makes the probe fail.
        let l = reuseport_listener(addr);
        let e = probe_exclusive(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(l);
        probe_exclusive(addr).unwrap();
    }
}
