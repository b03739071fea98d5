//! A short "still working" line at a modest interval, so that a long conda solve never makes
//! the log look hung (and a platform watching for silence does not think it is).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The interval between heartbeats; long enough not to clutter a log, short enough that an
/// operator watching `cf push` sees progress.
pub(crate) const INTERVAL: Duration = Duration::from_secs(20);

/// Prints heartbeats until dropped.
pub(crate) struct Heartbeat {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub(crate) fn start(activity: &str) -> Self {
        Self::start_with(activity.to_string(), INTERVAL, super::detail)
    }

    pub(crate) fn start_with(
        activity: String,
        interval: Duration,
        print: impl Fn(&str) + Send + 'static,
    ) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                print(&format!(
                    "... still {activity} ({} elapsed)",
                    super::format_duration(Duration::from_secs(started.elapsed().as_secs()))
                ));
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn beats_while_running_and_stops_when_dropped() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        let heartbeat = Heartbeat::start_with(
            "solving the environment".into(),
            Duration::from_millis(20),
            move |line| sink.lock().unwrap().push(line.to_string()),
        );
        std::thread::sleep(Duration::from_millis(110));
        drop(heartbeat);
        let count = lines.lock().unwrap().len();
        assert!(count >= 2, "expected heartbeats, got {count}");
        assert!(lines.lock().unwrap()[0].starts_with("... still solving the environment ("));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(lines.lock().unwrap().len(), count, "no beat after drop");
    }
}
