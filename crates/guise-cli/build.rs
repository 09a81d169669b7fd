//! Compiles the example service's protocol (`proto/guise/files/v1/files.proto`, kept
//! in this crate; the repository's `proto/` links to it)
//! with the protoc of the `protoc-bin-vendored` crate, so that a build needs no
//! system protoc; the descriptor set is kept for gRPC reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let proto = root.join("guise/files/v1/files.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("files_descriptor.bin"))
        .compile_with_config(config, &[proto], &[root])?;
    Ok(())
}
