//! One module per subcommand: clap `Args` + `run`.

pub mod build;
pub mod inspect;
pub mod push;
pub mod run;
pub mod secret;
pub mod store;
