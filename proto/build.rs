//! Generates the gRPC code from `epa/desktop/v1/*.proto` with protox (pure Rust): no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "epa/desktop/v1/daemon.proto",
        "epa/desktop/v1/events.proto",
        "epa/desktop/v1/errors.proto",
        "epa/desktop/v1/users.proto",
        "epa/desktop/v1/epa.proto",
        "epa/desktop/v1/documents.proto",
    ];
    let fds = protox::compile(protos, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=epa");
    Ok(())
}
