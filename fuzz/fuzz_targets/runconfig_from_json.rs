//! Any bytes through `from_json` and, when they load, `validate` and a round trip:
//! nothing may panic, and what loads must survive `to_json` → `from_json` unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = runconfig::from_json(data) else {
        return;
    };
    let _ = runconfig::validate(&config);
    let again =
        runconfig::from_json(&runconfig::to_json(&config)).expect("a loaded RunConfig reloads");
    assert_eq!(again, config, "round trip changed the RunConfig");
});
