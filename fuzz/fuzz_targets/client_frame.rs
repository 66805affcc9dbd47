//! Any bytes a WebSocket client sends as a text frame: the parser answers a frame or a refusal, and
//! never panics; a frame it accepts reads the same when sent again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtchat::proto::ClientFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let first = ClientFrame::parse(text);
        assert_eq!(first, ClientFrame::parse(text));
    }
});
