/work/main/tests/guests/target/wasm32-wasip2/release/deps/wrong_world.d: wrong-world/src/lib.rs /work/main/tests/guests/wrong-world/wit/world.wit

/work/main/tests/guests/target/wasm32-wasip2/release/deps/wrong_world.wasm: wrong-world/src/lib.rs /work/main/tests/guests/wrong-world/wit/world.wit

wrong-world/src/lib.rs:
/work/main/tests/guests/wrong-world/wit/world.wit:
