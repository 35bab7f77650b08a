"""The hand-written OData $batch codec: what it sends and how it reads the answer."""
import pytest

from shared.adapters.tables.batch import Operation, TransactionFailed, decode, encode


def test_encode_types_doubles_and_large_integers_and_drops_nones():
    _, body = encode("http://h/acct", "T", [Operation("create", {"PartitionKey": "p", "RowKey": "r", "x": 1.0,
                                                                  "big": 2**40, "n": 3, "gone": None})])
    text = body.decode()
    assert '"x":1.0,"x@odata.type":"Edm.Double"' in text
    assert '"big":"1099511627776","big@odata.type":"Edm.Int64"' in text
    assert '"n":3' in text and "gone" not in text
    assert "POST http://h/acct/T HTTP/1.1" in text


def test_replace_is_conditional_on_the_etag_and_escapes_quotes_in_keys():
    _, body = encode("http://h/a", "T", [Operation("replace", {"PartitionKey": "p'1", "RowKey": "r"}, 'W/"7"')])
    text = body.decode()
    assert "PUT http://h/a/T(PartitionKey='p''1',RowKey='r') HTTP/1.1" in text
    assert 'If-Match: W/"7"' in text


OK = (b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n"
      b"--cs\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\nETag: W/\"a\"\r\n\r\n\r\n"
      b"--cs\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\nETag: W/\"b\"\r\n\r\n\r\n--cs--")
CONFLICT = (b"--cs\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 409 Conflict\r\nContent-ID: 2\r\n"
            b"Content-Type: application/json\r\n\r\n"
            b'{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US","value":"1:The specified '
            b'entity already exists."}}}\r\n--cs--')


def test_decode_returns_etags_in_operation_order():
    assert decode(OK, 2) == ['W/"a"', 'W/"b"']


def test_decode_raises_with_the_failing_operation_index():
    with pytest.raises(TransactionFailed) as exc:
        decode(CONFLICT, 3)
    assert exc.value.index == 1 and exc.value.code == "EntityAlreadyExists" and exc.value.conflict


def test_decode_refuses_a_short_answer():
    with pytest.raises(TransactionFailed):
        decode(OK, 3)
