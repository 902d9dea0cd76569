/work/main/tests/guests/target/release/deps/wit_bindgen_rust_macro-50187ba8811a1253.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wit-bindgen-rust-macro-0.61.1/src/lib.rs

/work/main/tests/guests/target/release/deps/libwit_bindgen_rust_macro-50187ba8811a1253.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wit-bindgen-rust-macro-0.61.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/wit-bindgen-rust-macro-0.61.1/src/lib.rs:

# env-dep:DEBUG_OUTPUT_DIR=/work/main/tests/guests/target/release/build/wit-bindgen-rust-macro-127c35c297d1d2ff/out
