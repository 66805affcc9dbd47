//! `rtchat`: the command-line client. All of it lives in `rtchat::client`.

fn main() -> std::process::ExitCode {
    rtchat::client::main()
}
