//! The console as a user sees it: the real `lakectl` in a real terminal
//! (tmux) on a running stack. Keys switch views, start a small producer
//! run from the form, run a purge dry run, and quit; the captured screen
//! shows the lag view's partitions and the lake's rows after the run.

mod support;

use std::time::{Duration, Instant};

use support::terminal::Terminal;
use support::Project;

#[test]
fn the_console_in_a_terminal_shows_views_runs_the_producer_and_a_dry_run() {
    let project = Project::new("console_tmux");
    let mut up = project.up();
    let terminal = Terminal::open(&project, 100, 32);

    let screen = terminal.wait_for("the overview", |s| {
        s.contains("live, read") && s.contains("● running") && s.contains("lake-sink")
    });
    assert!(screen.contains("[1:overview]"), "{screen}");

    // A producer run of 300 records from the form, confirmed with y.
    terminal.keys(&[
        "p", "Tab", "BSpace", "BSpace", "BSpace", "BSpace", "300", "Enter",
    ]);
    terminal.wait_for("the confirmation", |s| s.contains("send 300 transactions"));
    terminal.keys(&["y"]);
    terminal.wait_for("the run's end", |s| {
        s.contains("producer done: 300 delivered")
    });

    // The lag view lists the sinks' partitions of transaction_log.
    terminal.keys(&["2"]);
    let lag = terminal.wait_for("the lag view", |s| {
        s.contains("[2:lag]")
            && s.lines()
                .filter(|l| l.contains("lake_sink") && l.contains("transaction_log"))
                .count()
                == 3
    });
    assert!(lag.contains("status"), "{lag}");

    // The lake view shows the 300 rows once the sink has landed them.
    terminal.keys(&["3"]);
    terminal.wait_for("the lake's rows", |s| {
        s.lines()
            .any(|l| l.contains("transaction_log") && l.contains(" 300 "))
    });
    // Filtered to the raw stream, then drilled into its dates.
    terminal.keys(&["/", "transaction_log", "Enter", "Enter"]);
    let dates = terminal.wait_for("the stream's dates", |s| {
        s.contains("lake › transaction_log")
    });
    assert!(dates.contains("ingestion_date"), "{dates}");
    // Then into today's files, with their partitions and offsets.
    terminal.keys(&["Enter"]);
    let files = terminal.wait_for("the date's files", |s| {
        s.contains(": files") && s.contains("part-00000-")
    });
    assert!(
        files.contains(": files (") && files.contains("offsets"),
        "{files}"
    );
    terminal.keys(&["Escape", "Escape", "Escape"]);

    // The logs view follows the API's own log folder.
    terminal.keys(&["6", "/", "api", "Enter", "Enter"]);
    terminal.wait_for("the API's log", |s| {
        s.contains("log/api/") && s.contains("lakehouse API listening")
    });
    terminal.keys(&["Escape", "Escape", "1"]);

    // A purge dry run: everything is today's, nothing is removed.
    terminal.keys(&["x"]);
    terminal.wait_for("the dry run", |s| s.contains("nothing expired"));
    terminal.keys(&["Enter", "q"]);
    let started = Instant::now();
    while terminal.is_open() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the console quits on q:\n{}",
            terminal.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The stack kept running (the console was only looking at it).
    assert_eq!(project.status()["stack"]["running"], true);
    let out = project.run(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = up.wait();
}

/// `lakectl up` with its console: Ctrl-C in the console stops the whole
/// stack, as the README says, and the terminal gets its shell back.
#[test]
fn ctrl_c_in_the_console_of_up_stops_the_whole_stack() {
    let project = Project::new("up_ctrl_c");
    let terminal = Terminal::open_with(&project, &["up"], 100, 32);
    terminal.wait_for("the console of up", |s| {
        s.contains("live, read") && s.contains("lake-sink") && s.contains("● running")
    });
    let status = project.wait_for(|s| s["stack"]["running"] == true && support::all_running(s));
    let broker = status["components"]["broker"]["pid"].as_u64().unwrap() as i32;
    terminal.keys(&["C-c"]);
    let started = Instant::now();
    while terminal.is_open() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Ctrl-C did not end lakectl up:\n{}",
            terminal.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(project.status()["stack"]["running"], false);
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(broker), None).is_ok();
    assert!(!alive, "the broker was stopped");
}
