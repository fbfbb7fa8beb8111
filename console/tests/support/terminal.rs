//! The real `lakectl` console in a real terminal (tmux, on a private socket).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::Project;

pub struct Terminal {
    pub socket: PathBuf,
    pub session: &'static str,
}

impl Terminal {
    pub fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    /// Opens `lakectl` (the console on the project's running stack) in a
    /// `width` x `height` terminal.
    pub fn open(project: &Project, width: u16, height: u16) -> Self {
        Self::open_with(project, &[], width, height)
    }

    /// Opens `lakectl ARGS` (`up`: the stack and its console).
    pub fn open_with(project: &Project, args: &[&str], width: u16, height: u16) -> Self {
        let terminal = Self {
            socket: project.dir.path().join("tmux.sock"),
            session: "console",
        };
        let command = project.lakectl();
        let mut tmux = terminal.tmux();
        tmux.args(["new-session", "-d", "-s", terminal.session])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg("-c")
            .arg(project.dir.path());
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                tmux.arg("-e").arg(format!(
                    "{}={}",
                    key.to_string_lossy(),
                    value.to_string_lossy()
                ));
            }
        }
        tmux.arg("-e").arg("TERM=xterm-256color");
        tmux.arg(command.get_program());
        tmux.args(args);
        let status = tmux.status().expect("tmux runs");
        assert!(status.success(), "tmux new-session");
        terminal
    }

    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            let status = self
                .tmux()
                .args(["send-keys", "-t", self.session, key])
                .status()
                .expect("send-keys");
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "waited for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The process the terminal runs (lakectl).
    pub fn pid(&self) -> String {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", self.session, "#{pane_pid}"])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn is_open(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", self.session])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}
