//! `warden run --approve tty`: the person at the terminal decides.

use super::{Answer, ApprovalRequest, Approver, async_trait};
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use tokio::net::unix::pipe;

/// Longest answer line kept; anything longer is not `y`.
const MAX_ANSWER: usize = 64;

/// Asks at a terminal, `/dev/tty` unless told otherwise: prints the request
/// and reads one line; `y` or `yes` (any case) approves, anything else,
/// an empty line or the end of input refuses.
///
/// - Prompts never interleave: a second request waits for the first answer.
/// - Input typed before the prompt appeared is discarded, so a stray `y`
///   cannot answer a question nobody has seen.
/// - What the tool chose (paths, URLs) is shown with control and
///   bidirectional-override characters escaped, so a path cannot rewrite
///   the prompt.
/// - A prompt that times out says so on the terminal; nothing is left
///   reading it.
/// - Without a terminal (a daemon, CI) every request is refused, and the
///   reason says so.
///
/// Records name it `tty` (or `tty:PATH` for another terminal). It needs a
/// tokio runtime with I/O enabled, as `wasi:http` does.
///
/// # Ambient Authority
///
/// Opens the terminal by path with the authority of the process.
#[derive(Debug)]
pub struct TtyApprover {
    path: PathBuf,
    turn: tokio::sync::Mutex<()>,
}

impl TtyApprover {
    /// Asks at the process's controlling terminal, `/dev/tty`.
    pub fn new() -> TtyApprover {
        TtyApprover::at("/dev/tty")
    }

    /// Asks at the terminal device `path`, e.g. `/dev/pts/3`: another window
    /// than the one the agent writes to.
    pub fn at(path: impl Into<PathBuf>) -> TtyApprover {
        TtyApprover {
            path: path.into(),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl Default for TtyApprover {
    fn default() -> TtyApprover {
        TtyApprover::new()
    }
}

#[async_trait]
impl Approver for TtyApprover {
    fn name(&self) -> String {
        if self.path == Path::new("/dev/tty") {
            "tty".into()
        } else {
            format!("tty:{}", self.path.display())
        }
    }

    async fn approve(&self, request: &ApprovalRequest) -> Answer {
        let _turn = self.turn.lock().await;
        let name = self.name();
        let tty = match Tty::open(&self.path) {
            Ok(tty) => tty,
            Err(e) => {
                return Answer::refuse(
                    name,
                    format!(
                        "cannot open {}: {e}; --approve tty needs a terminal, use --approve-cmd CMD without one",
                        self.path.display()
                    ),
                );
            }
        };
        if let Err(e) = tty.write_all(prompt(request).as_bytes()).await {
            return Answer::refuse(name, format!("cannot write to the terminal: {e}"));
        }
        let mut unanswered = Unanswered(Some(&tty));
        let line = tty.read_line().await;
        unanswered.0 = None;
        let (approved, reason) = match &line {
            Ok(Some(answer)) if is_yes(answer) => (true, format!("answered {answer:?}")),
            Ok(Some(answer)) => (false, format!("answered {answer:?}")),
            Ok(None) => (false, "the terminal closed without an answer".to_owned()),
            Err(e) => (false, format!("cannot read the terminal: {e}")),
        };
        let said: &[u8] = if approved {
            b"approved\n"
        } else {
            b"refused\n"
        };
        let _ = tty.write_all(said).await;
        Answer {
            approved,
            approver: name,
            reason,
        }
    }
}

/// The prompt for one request: every field the tool could have chosen is
/// made [`printable`].
pub(crate) fn prompt(request: &ApprovalRequest) -> String {
    let mut out = String::from("\nwarden: approval needed\n");
    let _ = writeln!(out, "  {}", printable(&request.summary));
    let _ = writeln!(out, "  call:  {}", printable(&request.call));
    let _ = writeln!(out, "  rule:  {}", printable(&request.rule));
    let mut task = format!("  task:  {}", printable(&request.task));
    let mut about = Vec::new();
    if let Some(agent) = &request.agent {
        about.push(format!("agent {}", printable(agent)));
    }
    if let Some(grant) = &request.grant {
        about.push(format!("grant {}", printable(grant)));
    }
    if !about.is_empty() {
        let _ = write!(task, " ({})", about.join(", "));
    }
    out.push_str(&task);
    out.push_str("\nApprove? [y/N] ");
    out
}

/// Whether an answer approves: `y` or `yes`, in any case, around blanks.
pub(crate) fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `text` with every character a terminal would act on instead of showing
/// written as an escape: controls (C0, DEL, C1, so no ANSI sequence) and the
/// bidirectional controls that reorder what is shown.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A terminal opened for one question, non-blocking, so that a timeout can
/// drop the read instead of leaving a thread waiting on it.
///
/// tokio's pipe halves drive it: they register any descriptor they own
/// (`from_file_unchecked` skips only the check that it is a FIFO), and a
/// terminal reads, writes and polls as a pipe does.
struct Tty {
    rx: pipe::Receiver,
    tx: pipe::Sender,
}

impl Tty {
    /// Opens the terminal and drops whatever was typed before: a stray `y`
    /// must not answer a question nobody has seen yet.
    fn open(path: &Path) -> io::Result<Tty> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        // On this open file description only: the shell's own is untouched.
        rustix::io::ioctl_fionbio(&file, true)?;
        let mut typeahead = [0u8; 256];
        while let Ok(n) = file.read(&mut typeahead) {
            if n == 0 {
                break;
            }
        }
        let tx = pipe::Sender::from_file_unchecked(file.try_clone()?)?;
        let rx = pipe::Receiver::from_file_unchecked(file)?;
        Ok(Tty { rx, tx })
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.tx.writable().await?;
            match self.tx.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One line, without its end; `None` at the end of input.
    async fn read_line(&self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            self.rx.readable().await?;
            let n = match self.rx.try_read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // A terminal whose other side closed reads as EIO.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            for &b in &buf[..n] {
                if b == b'\n' || b == b'\r' {
                    return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                }
                if line.len() < MAX_ANSWER {
                    line.push(b);
                }
            }
        }
    }
}

/// Says on the terminal that a prompt went unanswered, when the wait for it
/// is dropped (a timeout).
struct Unanswered<'a>(Option<&'a Tty>);

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(tty) = self.0 {
            let _ = tty.tx.try_write(b"\nno answer in time: refused\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::tests::request;
    use std::fs::File;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::time::Duration;

    #[test]
    fn the_prompt_says_what_who_and_why() {
        let mut r = request();
        r.grant = Some("g1".into());
        assert_eq!(
            prompt(&r),
            "\nwarden: approval needed\n\
             \x20 probe wants to open /rw/a.txt for writing\n\
             \x20 call:  wasi:filesystem/types.[method]descriptor.open-at\n\
             \x20 rule:  fs[1] /rw read-write\n\
             \x20 task:  t1 (agent planner, grant g1)\n\
             Approve? [y/N] "
        );
    }

    #[test]
    fn what_the_tool_chose_cannot_drive_the_terminal() {
        assert_eq!(printable("/rw/a\x1b[2K\rok"), "/rw/a\\u{1b}[2K\\u{d}ok");
        assert_eq!(printable("a\u{202E}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(printable("a\u{9b}b\u{7f}"), "a\\u{9b}b\\u{7f}");
        assert_eq!(printable("/rw/données"), "/rw/données");
        let mut r = request();
        r.summary = "probe wants to open /rw/\x1b]0;x\x07 for writing".into();
        assert!(!prompt(&r).contains('\x1b'));
    }

    #[test]
    fn only_yes_approves() {
        for yes in ["y", "Y", "yes", " YES ", "Yes"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "n", "no", "yes please", "ye", "y y", "1"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    /// A pseudo-terminal pair: the approver opens the slave by path, as it
    /// opens `/dev/tty`; the test plays the person at the master.
    fn pty() -> (File, PathBuf) {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
        (File::from(master), path)
    }

    /// Reads the master until `until` shows, typing `answer` once the
    /// prompt is there; returns the screen.
    fn person(
        mut master: File,
        answer: &'static str,
        until: &'static str,
    ) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut screen = Vec::new();
            let mut typed = false;
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&screen).contains(until) {
                let n = master.read(&mut buf).unwrap();
                assert!(n > 0, "the terminal closed");
                screen.extend_from_slice(&buf[..n]);
                if !typed && String::from_utf8_lossy(&screen).contains("[y/N] ") {
                    master.write_all(answer.as_bytes()).unwrap();
                    typed = true;
                }
            }
            String::from_utf8_lossy(&screen).into_owned()
        })
    }

    #[tokio::test]
    async fn a_person_approves_at_a_real_terminal() {
        let (master, path) = pty();
        let approver = TtyApprover::at(&path);
        assert_eq!(approver.name(), format!("tty:{}", path.display()));
        // Typed before the prompt: must not count as the answer.
        let mut early = master.try_clone().unwrap();
        early.write_all(b"y\n").unwrap();
        let screen = person(master, "n\ny\n", "refused");
        let d = approver.approve(&request()).await;
        let screen = screen.join().unwrap();
        assert!(!d.approved, "the early y answered: {d:?}\n{screen}");
        assert_eq!(d.reason, "answered \"n\"");

        let (master, path) = pty();
        let approver = TtyApprover::at(&path);
        let screen = person(master, "yes\n", "approved");
        let d = approver.approve(&request()).await;
        let screen = screen.join().unwrap();
        assert!(d.approved, "{d:?}\n{screen}");
        assert!(
            screen.contains("probe wants to open /rw/a.txt for writing"),
            "{screen}"
        );
        assert!(screen.contains("Approve? [y/N] "), "{screen}");
    }

    #[tokio::test]
    async fn a_timed_out_prompt_says_so_and_stops_reading() {
        let (master, path) = pty();
        let approver = TtyApprover::at(&path);
        let screen = person(master, "", "no answer in time: refused");
        let r =
            tokio::time::timeout(Duration::from_millis(200), approver.approve(&request())).await;
        assert!(r.is_err());
        let screen = screen.join().unwrap();
        assert!(screen.contains("Approve? [y/N] "), "{screen}");
    }

    #[tokio::test]
    async fn without_a_terminal_it_refuses_and_says_why() {
        let d = TtyApprover::at("/nonexistent/tty")
            .approve(&request())
            .await;
        assert!(!d.approved);
        assert!(
            d.reason.starts_with("cannot open /nonexistent/tty: "),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("--approve-cmd"), "{}", d.reason);
    }
}
