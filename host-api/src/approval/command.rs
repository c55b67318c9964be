//! `warden run --approve-cmd CMD`: a shell command decides each gated call.

use super::{Answer, ApprovalRequest, Approver, async_trait};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest command text repeated in the approver's name.
const MAX_NAME: usize = 120;
/// Longest first line of the command's output kept as the reason.
const MAX_SAID: usize = 200;

/// Runs `/bin/sh -c CMD` for each gated call, with the [`ApprovalRequest`] as
/// one line of JSON on its stdin. Exit status 0 approves; any other status, a
/// signal, or a command that cannot be started refuses. The first line the
/// command prints (up to 200 bytes) is kept as the reason, so a command
/// that asks someone can say who answered; its stderr goes to warden's.
///
/// The command runs in a process group of its own, which is killed when the
/// command exits or the answer times out: it leaves nothing running behind.
///
/// Records name it `command:CMD`. It needs a tokio runtime with I/O enabled,
/// which watches the child process.
///
/// # Ambient Authority
///
/// The command runs as warden's user, in warden's working directory and
/// environment: it is the operator's program, not the tool's.
#[derive(Debug, Clone)]
pub struct CommandApprover {
    command: String,
}

impl CommandApprover {
    /// An approver that runs `command` with `/bin/sh -c`.
    pub fn new(command: impl Into<String>) -> CommandApprover {
        CommandApprover {
            command: command.into(),
        }
    }
}

#[async_trait]
impl Approver for CommandApprover {
    fn name(&self) -> String {
        let mut shown: String = self.command.chars().take(MAX_NAME).collect();
        if shown.len() < self.command.len() {
            shown.push('…');
        }
        format!("command:{shown}")
    }

    async fn approve(&self, request: &ApprovalRequest) -> Answer {
        let name = self.name();
        let mut json = serde_json::to_vec(request).unwrap_or_default();
        json.push(b'\n');
        let mut child = match tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return Answer::refuse(name, format!("cannot start /bin/sh: {e}")),
        };
        // Dropped on every way out, a timeout included: the command's whole
        // group goes with it.
        let group = Group(
            child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(i32::try_from(id).ok()?)),
        );
        if let Some(mut stdin) = child.stdin.take() {
            // A command that decides without reading its input closes the
            // pipe early; that is its right, not an error.
            let _ = stdin.write_all(&json).await;
        }
        let mut stdout = child.stdout.take();
        let status = child.wait().await;
        drop(group);
        let said = match stdout.as_mut() {
            Some(out) => first_line(out).await,
            None => String::new(),
        };
        match status {
            Ok(status) => {
                let mut reason = describe(status);
                if !said.is_empty() {
                    reason = format!("{reason}: {said}");
                }
                if status.success() {
                    Answer::approve(name, reason)
                } else {
                    Answer::refuse(name, reason)
                }
            }
            Err(e) => Answer::refuse(name, format!("cannot wait for the command: {e}")),
        }
    }
}

/// A process group killed when dropped.
struct Group(Option<rustix::process::Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            // Gone already is fine: the group only has to be gone.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The first line of what the command printed, trimmed and cut short. The
/// group is gone by now, so the pipe is at its end; a process that left the
/// group and kept the pipe gets a moment, not a wait.
async fn first_line(out: &mut tokio::process::ChildStdout) -> String {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 512];
        while buf.len() < MAX_SAID * 4 {
            match out.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(100), read).await;
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().unwrap_or("").trim();
    let mut end = line.len().min(MAX_SAID);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::tests::request;

    #[tokio::test]
    async fn exit_zero_approves_and_the_request_is_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("req.json");
        let cmd = format!("cat > '{}'; echo 'ok by alice'", saved.display());
        let d = CommandApprover::new(&cmd).approve(&request()).await;
        assert!(d.approved, "{d:?}");
        assert_eq!(d.approver, format!("command:{cmd}"));
        assert_eq!(d.reason, "exit status 0: ok by alice");
        let got: ApprovalRequest =
            serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
        assert_eq!(got, request());
    }

    #[tokio::test]
    async fn anything_else_refuses() {
        let d = CommandApprover::new("exit 3").approve(&request()).await;
        assert!(!d.approved);
        assert_eq!(d.reason, "exit status 3");
        let d = CommandApprover::new("kill -9 $$").approve(&request()).await;
        assert!(!d.approved);
        assert_eq!(d.reason, "killed by signal 9");
        let d = CommandApprover::new("no-such-command-here")
            .approve(&request())
            .await;
        assert!(!d.approved, "{d:?}");
    }

    #[tokio::test]
    async fn a_dropped_answer_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("still-running");
        // A grandchild that would outlive its shell unless the group dies.
        let cmd = format!("(sleep 1; touch '{}') & wait", marker.display());
        let approver = CommandApprover::new(cmd);
        let r =
            tokio::time::timeout(Duration::from_millis(200), approver.approve(&request())).await;
        assert!(r.is_err(), "the command was still deciding");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !marker.exists(),
            "a process of the command's group survived"
        );
    }

    #[test]
    fn long_commands_are_cut_in_the_name() {
        let long = "x".repeat(500);
        let name = CommandApprover::new(long).name();
        assert!(
            name.starts_with("command:xxx") && name.ends_with('…'),
            "{name}"
        );
        assert!(name.len() < 200);
    }
}
