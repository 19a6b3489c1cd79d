//! Binary content the tools, resources and prompts return, already base64-encoded.

use serde_json::{Value, json};

/// A 1x1 red PNG.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// 2 ms of silence: 8 kHz, mono, 8-bit PCM in a WAV container.
pub const WAV_BASE64: &str =
    "UklGRjQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YRAAAACAgICAgICAgICAgICAgICA";

pub fn png_image() -> Value {
    json!({"type": "image", "data": PNG_BASE64, "mimeType": "image/png"})
}

pub fn wav_audio() -> Value {
    json!({"type": "audio", "data": WAV_BASE64, "mimeType": "audio/wav"})
}
