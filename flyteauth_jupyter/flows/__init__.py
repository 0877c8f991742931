"""Protocol logic, one module per grant: device (RFC 8628), authcode (auth code + PKCE), client_credentials,
refresh (and RFC 7009 revocation), command (external token command); pkce and tokens are the shared
pieces, events what flows report. Flows never print, sleep or start threads on their own: they get a
Transport, a control.Waiter and an observer."""
