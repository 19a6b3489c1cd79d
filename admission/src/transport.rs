//! The CRD's transport and the RunConfig's are the same three words; the one parsed form
//! is [`runconfig::validate::Transport`], and these convert to and from the CRD's enum.

use api::mcpserver::Transport as CrdTransport;
use runconfig::validate::Transport;

/// The CRD form of a RunConfig transport.
pub(crate) fn to_crd(transport: Transport) -> CrdTransport {
    match transport {
        Transport::Stdio => CrdTransport::Stdio,
        Transport::Sse => CrdTransport::Sse,
        Transport::StreamableHttp => CrdTransport::StreamableHttp,
    }
}

/// The RunConfig form of a CRD transport.
pub(crate) fn from_crd(transport: CrdTransport) -> Transport {
    match transport {
        CrdTransport::Stdio => Transport::Stdio,
        CrdTransport::Sse => Transport::Sse,
        CrdTransport::StreamableHttp => Transport::StreamableHttp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_and_runconfig_spell_every_transport_alike() {
        for crd in [
            CrdTransport::Stdio,
            CrdTransport::Sse,
            CrdTransport::StreamableHttp,
        ] {
            let spelled = serde_json::to_value(crd).expect("serialises");
            assert_eq!(spelled, from_crd(crd).as_str());
            assert_eq!(to_crd(from_crd(crd)), crd);
        }
    }
}
