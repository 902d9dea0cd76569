"""Proves that the Python `kurrentdbclient` package works against devstore.

Usage: python3 python_client.py 'esdb://127.0.0.1:PORT?tls=false' [127.0.0.1:SECURED_PORT]

Appends, reads back, catches up on a filtered `$all` subscription and receives a live event,
meets the delete and tombstone cases as the real server answers them, and shares a persistent
subscription between two consumers, parking and replaying one event.
Given the address of a second server started with `--tls-self-signed --require-auth`, also
checks stream ACLs there as `admin` and `ops`.
Prints "python client: ok" and exits 0 on success; exits 2 when the package is not installed.
"""

import ssl
import sys
import threading
import time
import uuid

try:
    from kurrentdbclient import KurrentDBClient, NewEvent, StreamState
    from kurrentdbclient.events import CaughtUp
    from kurrentdbclient.exceptions import (
        AlreadyExistsError,
        AccessDeniedError,
        NotFoundError,
        StreamIsDeletedError,
        WrongCurrentVersionError,
    )
except ImportError as error:  # pragma: no cover - depends on the machine
    print(f"python client: kurrentdbclient is not installed ({error})")
    sys.exit(2)


def expect(error, action, what):
    """Runs `action` and checks that it raises `error`."""
    try:
        action()
    except error:
        return
    raise AssertionError(f"expected {error.__name__}: {what}")


def deletes(client) -> None:
    """Delete and tombstone on missing, live and soft-deleted streams."""
    event = lambda: NewEvent(type="E", data=b"{}")
    # Nothing to soft-delete: the server's wrong-expected-version with "Actual version: -1",
    # which the client reports as not found, whatever the expectation.
    missing = f"missing-{uuid.uuid4()}"
    for version in (StreamState.NO_STREAM, StreamState.ANY, StreamState.EXISTS):
        expect(NotFoundError, lambda: client.delete_stream(missing, current_version=version), version)
    # A stream that never existed can be tombstoned; then it is deleted for good.
    never = f"never-{uuid.uuid4()}"
    client.tombstone_stream(never, current_version=StreamState.ANY)
    expect(StreamIsDeletedError, lambda: client.append_to_stream(never, events=[event()], current_version=StreamState.ANY), "append after tombstone")
    expect(StreamIsDeletedError, lambda: client.get_stream(never), "read after tombstone")
    # Soft delete, then recreate with NO_STREAM: revisions go on from the old last one.
    soft = f"soft-{uuid.uuid4()}"
    client.append_to_stream(soft, events=[event(), event()], current_version=StreamState.NO_STREAM)
    expect(WrongCurrentVersionError, lambda: client.delete_stream(soft, current_version=0), "delete expecting 0")
    client.delete_stream(soft, current_version=1)
    expect(NotFoundError, lambda: client.get_stream(soft), "read after soft delete")
    expect(StreamIsDeletedError, lambda: client.delete_stream(soft, current_version=StreamState.EXISTS), "delete a soft-deleted stream expecting it exists")
    client.delete_stream(soft, current_version=StreamState.NO_STREAM)
    client.append_to_stream(soft, events=[event()], current_version=StreamState.NO_STREAM)
    assert [e.stream_position for e in client.get_stream(soft)] == [2], client.get_stream(soft)
    # A soft-deleted stream can still be tombstoned.
    client.delete_stream(soft, current_version=2)
    client.tombstone_stream(soft, current_version=StreamState.ANY)
    expect(StreamIsDeletedError, lambda: client.get_stream(soft), "read after tombstone")


def persistent(client: KurrentDBClient) -> None:
    """Two consumers of one group share a stream's events; a parked one comes back after a
    replay; a group on $all with the client's default filter skips system events."""
    stream = f"python-persistent-{uuid.uuid4()}"
    placed = [NewEvent(type="Placed", data=b'{}') for _ in range(20)]
    client.append_to_stream(stream, events=placed, current_version=StreamState.NO_STREAM)
    client.create_subscription_to_stream("billing", stream, consumer_strategy="RoundRobin")
    expect(
        AlreadyExistsError,
        lambda: client.create_subscription_to_stream("billing", stream),
        "create twice",
    )
    expect(NotFoundError, lambda: client.get_subscription_info("nobody", stream), "info of a missing group")

    first = client.read_subscription_to_stream("billing", stream, event_buffer_size=5)
    second = client.read_subscription_to_stream("billing", stream, event_buffer_size=5)
    received: dict[int, list[int]] = {0: [], 1: []}
    lock = threading.Lock()
    all_received = threading.Event()

    def consume(index: int, subscription) -> None:
        for event in subscription:
            with lock:
                received[index].append(event.stream_position)
                done = sum(len(positions) for positions in received.values()) >= 20
            if event.stream_position == 7 and event.retry_count == 0:
                subscription.nack(event.ack_id, action="park")
            else:
                subscription.ack(event.ack_id)
            if done:
                all_received.set()

    threads = [threading.Thread(target=consume, args=pair) for pair in enumerate([first, second])]
    for thread in threads:
        thread.start()
    assert all_received.wait(timeout=30), received
    positions = sorted(received[0] + received[1])
    assert positions == list(range(20)), received
    assert received[0] and received[1], received

    deadline = time.monotonic() + 10
    while client.get_subscription_info("billing", stream).parked_message_count != 1:
        assert time.monotonic() < deadline, client.get_subscription_info("billing", stream)
        time.sleep(0.05)
    first.stop()
    second.stop()
    for thread in threads:
        thread.join(timeout=10)

    consumer = client.read_subscription_to_stream("billing", stream)
    client.replay_parked_events("billing", stream)
    for event in consumer:
        assert event.stream_position == 7, event
        assert event.link is not None and event.link.stream_name.endswith("::billing-parked"), event
        consumer.ack(event.ack_id)
        break
    consumer.stop()
    names = [(info.event_source, info.group_name) for info in client.list_subscriptions()]
    assert (stream, "billing") in names, names

    client.create_subscription_to_all("audit")
    audit = client.read_subscription_to_all("audit")
    for event in audit:
        assert not event.stream_name.startswith("$"), event
        audit.ack(event.ack_id)
        if event.stream_name == stream and event.stream_position == 19:
            break
    audit.stop()
    client.delete_subscription("billing", stream)
    client.delete_subscription("audit")
    expect(NotFoundError, lambda: client.get_subscription_info("billing", stream), "info after delete")
def acls(address: str) -> None:
    """Stream ACLs under `--require-auth`, over TLS: the client sends credentials only there."""
    host, port = address.rsplit(":", 1)
    certificate = ssl.get_server_certificate((host, int(port)))
    as_user = lambda user: KurrentDBClient(
        uri=f"esdb://{user}:changeit@{address}?tls=true", root_certificates=certificate
    )
    admin, ops = as_user("admin"), as_user("ops")
    event = lambda: NewEvent(type="E", data=b"{}")
    private = f"private-{uuid.uuid4()}"
    admin.append_to_stream(private, events=[event()], current_version=StreamState.NO_STREAM)
    admin.set_stream_metadata(private, metadata={"$acl": {"$r": "$admins"}})
    assert len(admin.get_stream(private)) == 1
    expect(AccessDeniedError, lambda: ops.get_stream(private), "ops reads a stream for $admins")
    # `$mr` and `$w` are left to the defaults, which let every user in.
    assert ops.get_stream_metadata(private)[0] == {"$acl": {"$r": "$admins"}}
    ops.append_to_stream(private, events=[event()], current_version=0)
    # System streams and `$all` are for admins by default.
    system = f"$system-{uuid.uuid4()}"
    expect(AccessDeniedError, lambda: ops.append_to_stream(system, events=[event()], current_version=StreamState.ANY), "ops appends to a system stream")
    expect(AccessDeniedError, lambda: list(ops.read_all()), "ops reads $all")
    assert [e.stream_position for e in admin.read_all() if e.stream_name == private] == [0, 1]
    admin.close()
    ops.close()


def main(uri: str) -> None:
    client = KurrentDBClient(uri=uri)
    stream = f"python-{uuid.uuid4()}"

    first = NewEvent(type="OrderPlaced", data=b'{"n": 1}')
    second = NewEvent(type="OrderShipped", data=b'{"n": 2}')
    position = client.append_to_stream(stream, events=[first, second], current_version=StreamState.NO_STREAM)

    recorded = client.get_stream(stream)
    assert [event.id for event in recorded] == [first.id, second.id], recorded
    assert [event.stream_position for event in recorded] == [0, 1], recorded
    assert recorded[-1].commit_position == position, (recorded[-1].commit_position, position)

    try:
        client.append_to_stream(stream, events=[NewEvent(type="X", data=b"{}")], current_version=5)
        raise AssertionError("expected a wrong-current-version error")
    except WrongCurrentVersionError:
        pass
    try:
        client.get_stream(f"missing-{uuid.uuid4()}")
        raise AssertionError("expected not found")
    except NotFoundError:
        pass

    # The default filter excludes system events with a negative look-ahead regex.
    subscription = client.subscribe_to_all(include_caught_up=True, timeout=30)
    seen = []
    caught_up = False
    for event in subscription:
        if isinstance(event, CaughtUp):
            if not caught_up:
                caught_up = True
                live = NewEvent(type="OrderDelivered", data=b'{"n": 3}')
                threading.Thread(
                    target=client.append_to_stream,
                    args=(stream,),
                    kwargs={"events": [live], "current_version": 1},
                ).start()
            continue
        assert not event.stream_name.startswith("$"), event
        seen.append(event.id)
        if caught_up and event.type == "OrderDelivered":
            break
    subscription.stop()
    assert seen[:2] == [first.id, second.id], seen
    assert len(seen) == 3, seen
    deletes(client)
    persistent(client)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1])
    if len(sys.argv) > 2:
        acls(sys.argv[2])
    print("python client: ok")
