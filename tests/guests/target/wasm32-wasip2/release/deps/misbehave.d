/work/main/tests/guests/target/wasm32-wasip2/release/deps/misbehave.d: misbehave/src/lib.rs /work/main/wit/log.wit /work/main/wit/world.wit /work/main/wit/sql.wit /work/main/wit/types.wit

/work/main/tests/guests/target/wasm32-wasip2/release/deps/misbehave.wasm: misbehave/src/lib.rs /work/main/wit/log.wit /work/main/wit/world.wit /work/main/wit/sql.wit /work/main/wit/types.wit

misbehave/src/lib.rs:
/work/main/wit/log.wit:
/work/main/wit/world.wit:
/work/main/wit/sql.wit:
/work/main/wit/types.wit:
