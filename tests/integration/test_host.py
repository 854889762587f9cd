"""The Host field on the wire: an empty one cannot name the authority of an
origin-form HTTP/1.1 request (RFC 9112 §3.2), so it is a 400 that closes
the connection; HTTP/1.0 needs no Host."""

import unittest

from harness import VerbdTestCase


class EmptyHost(VerbdTestCase):
    def test_empty_host_is_400(self):
        self.assertRejected(b"GET /index.html HTTP/1.1\r\nHost:\r\n\r\n", 400)

    def test_blank_host_is_400(self):
        self.assertRejected(b"GET /index.html HTTP/1.1\r\nHost:   \r\n\r\n", 400)

    def test_empty_host_on_options_star_is_400(self):
        self.assertRejected(b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n", 400)

    def test_absolute_form_brings_its_own_authority(self):
        c, r = self.exchange(b"GET http://localhost/index.html HTTP/1.1\r\nHost:\r\n\r\n")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, self.web.index)

    def test_http10_without_host_is_served(self):
        c, r = self.exchange(b"GET /index.html HTTP/1.0\r\n\r\n")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.web.index)

    def test_http10_with_empty_host_is_served(self):
        c, r = self.exchange(b"GET /index.html HTTP/1.0\r\nHost:\r\n\r\n")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.web.index)


if __name__ == "__main__":
    unittest.main()
