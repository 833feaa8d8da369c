"""The request table: every request beside its reply type, one exchange path for all of them."""

import typing

import pytest
from fakedevice import FakeSerial

from host import requests as rq
from host.client import Client, StateReply
from host.events import EVENTS
from host.transport import LinkError, Port
from protocol import errors
from protocol import messages as m

TIMEOUT = 0.05


def _catalogue(kinds):
    return {t for t, entry in m.CATALOGUE.items() if entry[1] in kinds}


@pytest.mark.req("LINK-CLIENT-1")
def test_every_request_in_the_catalogue_has_one_request_class_with_a_reply_type():
    assert set(rq.REQUESTS) == _catalogue((m.REQUEST,))
    for mtype, cls in rq.REQUESTS.items():
        assert mtype == cls.TYPE and callable(cls.Reply.parse), cls.__name__


@pytest.mark.req("LINK-CLIENT-1", "DEV-STYLE-2")
def test_every_request_class_is_typed_with_what_it_yields():
    # Client._request returns a request's Result event if it names one, else its reply; the type
    # argument says which to the type checker, so it must be that class
    for cls in rq.REQUESTS.values():
        (base,) = cls.__orig_bases__
        assert typing.get_origin(base) is rq.Request, cls
        assert typing.get_args(base) == (cls.Result or cls.Reply,), cls


@pytest.mark.req("LINK-CLIENT-1")
def test_every_event_and_stream_type_in_the_catalogue_has_a_class_that_reads_it():
    assert set(EVENTS) == _catalogue((m.EVENT, m.STREAM))


@pytest.mark.req("LINK-CLIENT-1")
@pytest.mark.parametrize(
    "call, mtype",
    [
        (lambda c: c.estop(), m.ESTOP),
        (lambda c: c.maintenance(), m.MAINTENANCE_ENTER),
        (lambda c: c.selftest(), m.SELFTEST),
        (lambda c: c.log_read(0), m.LOG_READ),
        (lambda c: c.protocol_show(), m.PROTOCOL_SHOW),
        (lambda c: c.ping(), m.PING),
    ],
)
def test_a_timeout_resends_exactly_the_requests_the_table_marks(call, mtype):
    fake = FakeSerial()
    client = Client(Port(fake), timeout=TIMEOUT, retries=2)
    fake.mute.add(mtype)
    with pytest.raises(LinkError):
        call(client)
    sent = fake.types()[1:].count(mtype)
    assert sent == (3 if rq.REQUESTS[mtype].resend else 1)


@pytest.mark.req("LINK-CLIENT-1")
def test_maintenance_goes_the_one_path_a_restarted_device_is_greeted_and_asked_again():
    fake = FakeSerial()
    client = Client(Port(fake), timeout=TIMEOUT)
    real = fake.response

    def response(seq, mtype, body):
        if mtype == m.MAINTENANCE_ENTER:
            return m.build(m.RESPONSE, seq, mtype, state=m.MAINTENANCE)
        return real(seq, mtype, body)

    fake.response = response
    fake.reboot()  # the device answers HELLO_REQUIRED until greeted again
    r = client.maintenance()
    assert isinstance(r, StateReply) and (r.request, r.state) == ("MAINTENANCE_ENTER", "MAINTENANCE")
    assert fake.types()[1:] == [m.MAINTENANCE_ENTER, m.HELLO, m.MAINTENANCE_ENTER]
    assert client.state == "MAINTENANCE"


@pytest.mark.req("LINK-CLIENT-1")
def test_a_refused_request_with_a_result_event_returns_the_refusal():
    fake = FakeSerial()
    client = Client(Port(fake), timeout=TIMEOUT)
    fake.response = lambda seq, mtype, body: m.error(seq, mtype, errors.ILLEGAL_STATE, "a session runs")
    r = client.selftest(timeout=30)
    assert not r.ok and (r.request, r.name) == ("SELFTEST", "ILLEGAL_STATE")
