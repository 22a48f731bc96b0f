//! TCP listener (SO_REUSEPORT, one per shard on the same port) and streams.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

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
        let fd = self.0.as_raw_fd();
        let (r, w) = futures_lite::io::split(self.0);
        (ReadHalf(r), WriteHalf { inner: w, fd })
    }
}

pub struct ReadHalf(futures_lite::io::ReadHalf<glommio::net::TcpStream>);
pub struct WriteHalf {
    inner: futures_lite::io::WriteHalf<glommio::net::TcpStream>,
    /// The stream's socket, for `write_all_vectored`. Open as long as
    /// `inner` is: both halves share the stream, which closes it on drop.
    fd: RawFd,
}

/// Most pieces one `sendmsg` is given (the kernel's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

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
        self.inner.write_all(buf).await
    }

    /// Write `bufs` in order, straight from their memory, in as few system
    /// calls as the socket allows: one `sendmsg` over up to `IOV_MAX` of
    /// them while the socket takes all it is given. Where it takes only part
    /// (its buffer is full), the rest of that piece goes through the stream,
    /// which waits until the socket can take more, and the next pieces
    /// through `sendmsg` again. A fetch response is a piece per partition
    /// header and per record chunk: written one `send` each, with
    /// TCP_NODELAY each became its own packet (small-keyed: about 200 per
    /// response, 14% of the broker's CPU in `send`).
    pub async fn write_all_vectored(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        let mut i = 0; // the piece being written
        let mut off = 0; // its bytes already written
        let mut iov: Vec<libc::iovec> = Vec::with_capacity(bufs.len().min(IOV_MAX));
        while i < bufs.len() {
            if off == bufs[i].len() {
                (i, off) = (i + 1, 0);
                continue;
            }
            iov.clear();
            iov.extend(bufs[i..].iter().take(IOV_MAX).enumerate().map(|(k, b)| {
                let b = if k == 0 { &b[off..] } else { b };
                libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                }
            }));
            // SAFETY: an all-zero msghdr is valid (no name, no control data);
            // its iovecs point into `bufs`, borrowed and unchanged for the
            // whole call, which only reads them. `self.fd` is the open socket
            // of `inner` (see the field), and MSG_DONTWAIT keeps the call from
            // blocking the shard.
            let sent = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = iov.len() as _;
                libc::sendmsg(self.fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {
                        // Full: wait through the stream for this piece.
                        self.inner.write_all(&bufs[i][off..]).await?;
                        (i, off) = (i + 1, 0);
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            // Step over what was sent, piece by piece.
            let mut left = sent as usize;
            while left > 0 {
                let take = left.min(bufs[i].len() - off);
                (left, off) = (left - take, off + take);
                if off == bufs[i].len() {
                    (i, off) = (i + 1, 0);
                }
            }
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
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

    /// Many small pieces and some larger than the socket's buffer, read
    /// slowly on the other side so that the socket fills up and `sendmsg`
    /// takes only part of what it is given or nothing: every byte must
    /// arrive once, in order.
    #[test]
    fn vectored_writes_arrive_whole_and_in_order_when_the_socket_fills() {
        use std::io::Read;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for i in 0..3000usize {
            let len = match i % 500 {
                7 => 3 << 20,
                0 => 0,
                n => n % 61 + 1,
            };
            pieces.push((0..len).map(|k| (i * 31 + k) as u8).collect());
        }
        let want: Vec<u8> = pieces.concat();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0; 64 << 10];
            loop {
                std::thread::sleep(std::time::Duration::from_micros(200));
                match s.read(&mut buf).unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        crate::shard::block_on(async move {
            let s = Stream::connect(addr, std::time::Duration::from_secs(10))
                .await
                .unwrap();
            let (_r, mut w) = s.split();
            let bufs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            // More pieces than one sendmsg takes, in two calls.
            w.write_all_vectored(&bufs[..1500]).await.unwrap();
            w.write_all_vectored(&bufs[1500..]).await.unwrap();
            w.flush().await.unwrap();
        });
        let got = reader.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
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
