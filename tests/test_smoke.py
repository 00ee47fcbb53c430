from tests.support import Person, message_id, open_stream


def test_register_and_post(person: Person) -> None:
    response = person.post_public("hello")
    assert response.status_code == 201
    assert message_id(response.text)


async def test_stream_receives_public_message(make_person) -> None:
    alice, bob = make_person(), make_person()
    async with open_stream(bob.base_url, token=bob.token()) as stream:
        sent = alice.post_public("hi bob")
        assert sent.status_code == 201, (sent.status_code, sent.text, sent.headers)
        event = await stream.next_named("message")
        assert message_id(event.data) == message_id(sent.text)
        assert "hi bob" in event.data
