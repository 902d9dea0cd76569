//! Compiles the EventStoreDB `.proto` files in `proto/` into tonic server and client stubs.
//!
//! `protox` parses the files in pure Rust, so no `protoc` binary is needed on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/shared.proto",
        "proto/streams.proto",
        "proto/gossip.proto",
        "proto/serverfeatures.proto",
        "proto/persistent.proto",
        "proto/operations.proto",
        "proto/monitoring.proto",
    ];
    for file in files
        .iter()
        .chain(&["proto/status.proto", "proto/code.proto"])
    {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_build::configure()
        .build_server(true)
        // Tests drive the server with the official client; our own client stubs are only used
        // by the benchmark and a few protocol-level tests.
        .build_client(true)
        // The same mapping as the official client: `Empty` is the unit type on both sides.
        .extern_path(".event_store.client.Empty", "()")
        .bytes([
            "StreamIdentifier.stream_name",
            "AppendReq.ProposedMessage.custom_metadata",
            "AppendReq.ProposedMessage.data",
            "BatchAppendReq.ProposedMessage.custom_metadata",
            "BatchAppendReq.ProposedMessage.data",
            "ReadEvent.RecordedEvent.custom_metadata",
            "ReadEvent.RecordedEvent.data",
        ])
        .compile_fds(descriptors)?;
    Ok(())
}
