//! The wire protocol: event names, frames, request ids and error codes.
//!
//! See `PROTOCOL.md` §1. Everything here is pure data: no I/O, no async.

mod error;
mod event_name;
mod frame;

pub use error::{ErrorCode, EventError, FieldErrors};
pub use event_name::{EventName, EventNameError, MAX_EVENT_NAME_LEN};
pub use frame::{
    FrameError, InboundFrame, MAX_REQUEST_ID_LEN, ReplyMeta, RequestId, encode_push, encode_reply, encode_resync,
    parse_frame,
};
