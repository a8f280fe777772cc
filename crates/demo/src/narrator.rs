//! The demo's narrative: one line per event, stamped with the time since
//! the start, to stdout (or kept, for tests).
//!
//! Whoever calls [`Narrator::say`] keeps to the rule of the project: no
//! precise location, no key, no report or message content. Places are named
//! by district ([`crate::city::City::district`]).

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where the lines go.
enum Sink {
    Stdout,
    Keep(Mutex<Vec<String>>),
}

/// Tells what happens. Clones share the same start time and sink.
#[derive(Clone)]
pub struct Narrator {
    start: Instant,
    sink: Arc<Sink>,
}

impl Narrator {
    /// Lines to stdout.
    pub fn stdout() -> Narrator {
        Narrator {
            start: Instant::now(),
            sink: Arc::new(Sink::Stdout),
        }
    }

    /// Lines kept in memory (see [`Narrator::lines`]), for tests.
    pub fn keep() -> Narrator {
        Narrator {
            start: Instant::now(),
            sink: Arc::new(Sink::Keep(Mutex::new(Vec::new()))),
        }
    }

    /// The lines said so far (empty for stdout).
    pub fn lines(&self) -> Vec<String> {
        match &*self.sink {
            Sink::Stdout => Vec::new(),
            Sink::Keep(m) => match m.lock() {
                Ok(v) => v.clone(),
                Err(p) => p.into_inner().clone(),
            },
        }
    }

    /// One line, stamped `[mm:ss]` since the start.
    pub fn say(&self, line: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs();
        self.emit(format!("[{:02}:{:02}] {}", t / 60, t % 60, line.as_ref()));
    }

    /// One line as it is (the banner).
    pub fn plain(&self, line: impl AsRef<str>) {
        self.emit(line.as_ref().to_owned());
    }

    fn emit(&self, line: String) {
        match &*self.sink {
            Sink::Stdout => {
                // A closed stdout (`| head`) must not bring the demo down.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Sink::Keep(m) => match m.lock() {
                Ok(mut v) => v.push(line),
                Err(p) => p.into_inner().push(line),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stamped_and_kept() {
        let n = Narrator::keep();
        n.say("hello");
        n.plain("banner");
        assert_eq!(n.lines(), vec!["[00:00] hello", "banner"]);
        assert!(Narrator::stdout().lines().is_empty());
    }
}
