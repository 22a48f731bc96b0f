//! A network of hosts made of Linux network namespaces, owned by one test:
//! a switch (a bridge in its own namespace), one namespace per broker and
//! one for the test's clients, each joined to the switch by a veth pair.
//! Nothing is added to the machine's own namespace. The test's thread moves
//! into the client namespace (`enter_client`), so everything it then opens,
//! the threads it spawns and the processes it runs reach the brokers by
//! their own addresses, as clients on another host would.
//!
//! A partition is made with blackhole routes inside the brokers' namespaces
//! (a broker cannot reach the hosts on the other side, nor they it), so the
//! client namespace still reaches every broker: an isolated leader still
//! gets produce requests it cannot replicate, as in Jepsen's partitions.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const PREFIX: &str = "sluice-test-";

pub struct Net {
    name: String,
    brokers: usize,
    /// The thread's own namespace before `enter_client`, to return to.
    home: Option<File>,
    /// The blackhole routes in place, as (namespace of host i, address j).
    cuts: Vec<(usize, usize)>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {} (these tests make network namespaces and need root, as CI has)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces of earlier runs whose process is gone (a test killed before
/// its Drop ran): `sluice-test-<pid>-<n>-<host>`.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

impl Net {
    /// A switch, `brokers` broker hosts (10.201.0.1 ...) and a client host
    /// (10.201.0.100).
    pub fn create(brokers: usize) -> Net {
        assert!((1..100).contains(&brokers));
        remove_stale();
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net {
            name,
            brokers,
            home: None,
            cuts: Vec::new(),
        };
        let sw = net.ns_name("sw");
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for host in (1..=brokers).chain([100]) {
            let ns = net.host_ns(host);
            let port = format!("p{host}");
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &port, "up"]);
            let addr = format!("{}/24", Net::addr_of(host));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        net
    }

    fn ns_name(&self, host: &str) -> String {
        format!("{}-{host}", self.name)
    }

    fn host_ns(&self, host: usize) -> String {
        if host == 100 {
            self.ns_name("cl")
        } else {
            self.ns_name(&format!("b{host}"))
        }
    }

    fn addr_of(host: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, 0, host as u8)
    }

    /// Broker `id`'s namespace (ids from 1).
    pub fn broker_ns(&self, id: usize) -> String {
        assert!((1..=self.brokers).contains(&id));
        self.host_ns(id)
    }

    /// Broker `id`'s address.
    pub fn broker_addr(&self, id: usize) -> IpAddr {
        assert!((1..=self.brokers).contains(&id));
        IpAddr::V4(Net::addr_of(id))
    }

    /// Move the calling thread into the client namespace. Threads and
    /// processes it starts from then on are in it too.
    pub fn enter_client(&mut self) {
        assert!(self.home.is_none(), "already in the client namespace");
        let home = File::open("/proc/thread-self/ns/net").expect("open own netns");
        let target =
            File::open(format!("/var/run/netns/{}", self.host_ns(100))).expect("open client netns");
        // SAFETY: setns on a valid, open namespace fd with the matching
        // CLONE_NEWNET type changes only this thread's network namespace
        // (allowed in a multi-threaded process for network namespaces);
        // `Drop` moves the thread back from the fd kept in `home`.
        let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        self.home = Some(home);
    }

    /// Cut brokers in `side` off from the other brokers (both ways); the
    /// client host still reaches everyone.
    pub fn isolate(&mut self, side: &[usize]) {
        for a in 1..=self.brokers {
            for b in 1..=self.brokers {
                if side.contains(&a) != side.contains(&b) && !self.cuts.contains(&(a, b)) {
                    let to = format!("{}/32", Net::addr_of(b));
                    ip(&["-n", &self.host_ns(a), "route", "add", "blackhole", &to]);
                    self.cuts.push((a, b));
                }
            }
        }
    }

    /// Remove every cut.
    pub fn heal(&mut self) {
        for (a, b) in std::mem::take(&mut self.cuts) {
            let to = format!("{}/32", Net::addr_of(b));
            ip(&["-n", &self.host_ns(a), "route", "del", "blackhole", &to]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            // SAFETY: as in `enter_client`; `home` is this thread's original
            // network namespace.
            let rc = unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                eprintln!("setns back: {}", std::io::Error::last_os_error());
            }
        }
        // Deleting a namespace deletes its end of each veth pair, and with it
        // the other end.
        for host in (1..=self.brokers).chain([100]) {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.host_ns(host)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns_name("sw")])
            .status();
    }
}
