//! The live status line: an indicatif spinner on a terminal, a plain line
//! every few seconds otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::result::{fmt_us, Sample};

/// Without a terminal, print every this many samples.
const PLAIN_EVERY: usize = 5;

pub struct Progress {
    bar: Option<ProgressBar>,
    enabled: bool,
    samples: usize,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            enabled,
            samples: 0,
        }
    }

    pub fn update(&mut self, phase: &str, s: &Sample) {
        let line = format!(
            "{:>6.1}s {phase:<8} produce {:>8.1} MB/s {:>9.0} msg/s | consume {:>8.1} MB/s | p99 publish {:>9} e2e {:>9}",
            s.t_s,
            s.produce_mb_per_s,
            s.produce_msgs_per_s,
            s.consume_mb_per_s,
            fmt_us(s.publish_p99_us),
            fmt_us(s.e2e_p99_us)
        );
        self.samples += 1;
        match &self.bar {
            Some(b) => b.set_message(line),
            None if self.enabled && self.samples.is_multiple_of(PLAIN_EVERY) => eprintln!("{line}"),
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
