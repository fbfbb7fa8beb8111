//! `lakectl`'s parts: the single-machine stack, its status, the console
//! and the producer and user commands. The binary (`main.rs`) is the
//! command line over them; the console's benchmark uses them too.

pub mod demo;
pub mod lag;
pub mod produce;
pub mod search;
pub mod stack;
pub mod state;
pub mod status;
pub mod ui;
pub mod users;
