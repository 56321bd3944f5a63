//! Processes of this machine, as the session layer needs them: is a lease holder's process
//! still alive, does it still run respawn, and sending it the interrupt signal.

use crate::ledger::Holder;

/// The host name leases record (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn this_host() -> String {
    Holder::this_process(None).host
}

/// A holder on this machine whose process no longer exists (killed, say). A holder on
/// another machine is never known to be gone: only its lease's expiry tells.
pub fn holder_is_gone(holder: &Holder) -> bool {
    if holder.host != this_host() {
        return false;
    }
    process_is_gone(holder.pid)
}

/// Whether no process `pid` exists on this machine.
pub fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Whether process `pid` of this machine runs the respawn binary (a pid can be reused).
pub fn runs_respawn(pid: u32) -> bool {
    let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&command).contains("respawn")
}

/// Sends SIGUSR1 to an orchestrator: it loses its current spot cluster.
pub fn send_interrupt(pid: u32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_gone() {
        let me = Holder::this_process(None);
        assert!(!holder_is_gone(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = Holder { pid, ..me.clone() };
        assert!(holder_is_gone(&gone));
        let elsewhere = Holder {
            host: "another-host".into(),
            pid,
            ..me
        };
        assert!(!holder_is_gone(&elsewhere), "only the expiry tells");
    }
}
