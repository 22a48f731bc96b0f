//! CPU seconds (user + system) of this process and of a broker process.

/// This process, all threads, since it started.
pub fn client_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Another process (e.g. the broker), from /proc/<pid>/stat; None if it is
/// gone or unreadable.
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: the fields
    // we want are counted from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11, 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / hz.max(1.0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_stat_with_odd_command_names() {
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let s = "1234 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(super::parse_stat(s), Some(300.0 / hz));
        assert!(super::process_cpu_s(std::process::id()).is_some());
        assert!(super::client_cpu_s() >= 0.0);
    }
}
