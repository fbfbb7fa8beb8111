//! The console's costs: the time to draw a frame of each view with 50
//! lake streams and 100 consumer partitions (ratatui's TestBackend, the
//! same drawing code as the terminal), and the CPU the real `lakectl`
//! console uses while idle on a running stack at the default refresh
//! (read from /proc over BENCH_IDLE_SECS, 30 by default).
//! `cargo bench -p lakectl --bench console`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use lakectl::ui::app::{update, Action, App, View};
use lakectl::ui::fixture::{feed, start};
use lakectl::ui::views;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn frame_times() {
    let mut app = App::new(Duration::from_secs(2), "q: quit");
    for step in 0..12 {
        let at = start() + chrono::Duration::seconds(2 * step);
        feed(&mut app, step, 50, 100, at);
    }
    let now = start() + chrono::Duration::seconds(24);
    println!("| view | terminal | frames | median µs | p99 µs |");
    println!("|---|---|---:|---:|---:|");
    for view in View::ALL {
        update(&mut app, Action::Show(view), now);
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            let mut times: Vec<Duration> = (0..500)
                .map(|_| {
                    let t = Instant::now();
                    terminal.draw(|f| views::render(f, &app, now)).unwrap();
                    t.elapsed()
                })
                .collect();
            times.sort();
            println!(
                "| {} | {w}x{h} | {} | {:.0} | {:.0} |",
                view.name(),
                times.len(),
                times[times.len() / 2].as_secs_f64() * 1e6,
                times[times.len() * 99 / 100].as_secs_f64() * 1e6
            );
        }
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the console runs");
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn idle_cpu() {
    let seconds: u64 = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let project = support::Project::new("console_bench");
    let mut up = project.up();
    let terminal = support::terminal::Terminal::open(&project, 120, 40);
    let pid = terminal.pid();
    std::thread::sleep(Duration::from_secs(5));
    // USER_HZ on Linux.
    let ticks_per_second = 100.0;
    let (before, started) = (cpu_ticks(&pid), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let used = (cpu_ticks(&pid) - before) as f64 / ticks_per_second;
    let wall = started.elapsed().as_secs_f64();
    println!();
    println!("| console idle on a running stack | seconds | CPU seconds | CPU % of one core |");
    println!("|---|---:|---:|---:|");
    println!(
        "| refresh 2 s (the default), 120x40 | {wall:.0} | {used:.2} | {:.2} |",
        used / wall * 100.0
    );
    drop(terminal);
    let _ = project.run(&["down"]);
    let _ = up.wait();
}

fn main() {
    frame_times();
    idle_cpu();
}
