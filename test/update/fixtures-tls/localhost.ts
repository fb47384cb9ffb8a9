// A self-signed certificate for localhost and 127.0.0.1 (P-256, valid until 2126), so the
// TLS path of oci/http1.ts is tested against a real TLS server on loopback without openssl
// at test time. Test-only: the key is public.
export const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXrxDdJDt6PG5e41a
14XaYApAr+fvl1zoVV9SpOBhFnihRANCAATYsPCiUkPWAfXKaf4Us1O81efxzVTB
LKXVpGkYnojOlroO5FmDp+t/ETYiXT924/csP3wSH26aU/eoGirL+rSK
-----END PRIVATE KEY-----
`;

export const CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUbEzjYfJKiCCAgt5b6cqy+kfE/tYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjA2NDA0NFoYDzIxMjYxMDI5
MDY0MDQ0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATYsPCiUkPWAfXKaf4Us1O81efxzVTBLKXVpGkYnojOlroO5FmDp+t/
ETYiXT924/csP3wSH26aU/eoGirL+rSKo28wbTAdBgNVHQ4EFgQUpojg+615rS/G
vWQOcsa4AYPlQPgwHwYDVR0jBBgwFoAUpojg+615rS/GvWQOcsa4AYPlQPgwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIgX/6vi9zr3QbOcMcjkcbwMsOJ+z/lJ+b1n1lFmP+tChgCIQCw
d2iltN8bFG2T1mb9iaveDKEJ+uPCWvkM2vTbEHtPjw==
-----END CERTIFICATE-----
`;
