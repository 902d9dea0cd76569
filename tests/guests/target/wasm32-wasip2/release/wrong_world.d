/work/main/tests/guests/target/wasm32-wasip2/release/wrong_world.wasm: /work/main/tests/guests/wrong-world/src/lib.rs /work/main/tests/guests/wrong-world/wit/world.wit
