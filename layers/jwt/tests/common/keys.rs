//! Fixed test keys (never use them anywhere else): generating RSA keys at
//! test time is slow.

/// A 2048-bit RSA private key (PKCS#1), generated once with `openssl genrsa -traditional 2048`. Test-only.
#[allow(dead_code)]
pub const RSA_PRIVATE_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA4eJDb52EbHZazj3c0sWdFoX7IEdn/8ByCsDHJPedXjJ1aCxo
YVE5Rd0TiP0VFqFcIpCArPNzrEFysgUSZPKAYY7nHtgJnCX6ZozxA5pUNjR/HM9y
u47kd7iycPURNHsvaul1LqILNlazDrN1jvtuFgJSbU4c1lln9/CZ8cBwnh+jggZW
5rQMDpRFNxAHEkPx67VDdplnKfya50/ZiqOQEj1X2L2ummVXXKOpQVynctNW7y1b
eHGyv16ksZ9R7T1UiV7GjlCN3yW3G7Zx5nCgwzA4aT6RyFade50yXYK+ArU8nUJG
/em0A6Lw4Ue+6nkXxyUr9z07fAuttFzTL3UEJQIDAQABAoIBACcwRBbXMyRGHFbv
sKH4mtpPgFQHT2m1j5OCAorNUsYG5wuduLY5i0AtrLf1gHUepYdxnoFi80yNRkLQ
UnKlB9TlH//f5zrp89la1m2TlsyYqvzqmLMlhUmoB31FZyi9vmpD+oqOnndc70+7
nseho2W6HWbNSH9/n2QKoAqrIl6sNxY/bGgfltxG1/4wLeTpQLa2i19H7FymjPel
phi0cmufVq0SWgBM5e2jRys2axPQCZN4ulZAwUoLsN7iTolW94fTjH1wmmr4v8sD
JcCMATbVvw/UioG66LjEWq8c2+O9uJQC5vAIu7S1x8hF1OWCNEmVkH7E/tLC5b2z
W9B/KDkCgYEA8tEbz3/6KLZ8eNGWvf7d+2YUqbtMPjAp5S5fXgaxzuDEUz1K7SbF
NXt7QLK6UNaD2gIi17fkpbkrJMbcIM/Mg7JQqsJm0/jzLv5PEMUMDIHiXTap8GKK
ULeiFtc8JsAbq5EMKagCv/SY4wh0F7JVQ+8Qg2+nodbRAmtj3SR5WNMCgYEA7iXN
9vPl0OJvJu4X4cuu92DamSZyDF5Prcrkjhrrmupf4lRd1lTN4ONWUliPu+y121JO
9zvpJi2rzSHDeZ9dnPJdT4O/wrwcw72xNnK5VRpgOyrvLgXOOdwjYJ0d3EdhxCnl
+8Q8KE6W2rDZHuGFXmiWevNxz1PdZiY6oHzYFCcCgYBQXp5R5A4tA5nXc6ftYzqe
R393XqMxwkdbsCmouZaI3yScWKFANaD4vtJg68d3kkk6E5Lsy9VGdS+ukJOz2JPc
01yX6JiYeMIlP89zwYTnbuY57Cn7guI9LUrdPIiQWu3Nr8jS0OV4G8GvA9FJNqG6
Rpq0pnRZwPyVTG5VeAkiOQKBgQDB/WeWd7zH9/uFIcOweaOv/WR0Br42Vwjez/x3
yXQMgEjU69Z4hiIiw+0ILP4AneTRoG2UtWfJYsCk25EI3Il8FG1wHSkyrttbk4Ts
jm1r5o1nBSVKPw5rUWg8BiBR1I/OJDckbAh46PO3dwGWRyzF57pUs0QNGAqscA2n
t6qoVwKBgAJNXqvoNktN1IU25Dpuf9qbyqnio4R1TrWifQAtdsklH0BDabjT/cSj
FtUPk0jXhhN1nFYvTRQSYLhTPZLFaagW1wUGAfLIpWgRb36zXpMaCUsL2yszRZGc
Ol/y9qasUsOMDiCBtwNh7DM+WOYVi8Bh8MG2ajGk6GS1j2557gIq
-----END RSA PRIVATE KEY-----
";

/// Its public key, SPKI (`BEGIN PUBLIC KEY`).
#[allow(dead_code)]
pub const RSA_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4eJDb52EbHZazj3c0sWd
FoX7IEdn/8ByCsDHJPedXjJ1aCxoYVE5Rd0TiP0VFqFcIpCArPNzrEFysgUSZPKA
YY7nHtgJnCX6ZozxA5pUNjR/HM9yu47kd7iycPURNHsvaul1LqILNlazDrN1jvtu
FgJSbU4c1lln9/CZ8cBwnh+jggZW5rQMDpRFNxAHEkPx67VDdplnKfya50/ZiqOQ
Ej1X2L2ummVXXKOpQVynctNW7y1beHGyv16ksZ9R7T1UiV7GjlCN3yW3G7Zx5nCg
wzA4aT6RyFade50yXYK+ArU8nUJG/em0A6Lw4Ue+6nkXxyUr9z07fAuttFzTL3UE
JQIDAQAB
-----END PUBLIC KEY-----
";

/// The same public key, PKCS#1 (`BEGIN RSA PUBLIC KEY`).
#[allow(dead_code)]
pub const RSA_PUBLIC_PKCS1_PEM: &str = "\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA4eJDb52EbHZazj3c0sWdFoX7IEdn/8ByCsDHJPedXjJ1aCxoYVE5
Rd0TiP0VFqFcIpCArPNzrEFysgUSZPKAYY7nHtgJnCX6ZozxA5pUNjR/HM9yu47k
d7iycPURNHsvaul1LqILNlazDrN1jvtuFgJSbU4c1lln9/CZ8cBwnh+jggZW5rQM
DpRFNxAHEkPx67VDdplnKfya50/ZiqOQEj1X2L2ummVXXKOpQVynctNW7y1beHGy
v16ksZ9R7T1UiV7GjlCN3yW3G7Zx5nCgwzA4aT6RyFade50yXYK+ArU8nUJG/em0
A6Lw4Ue+6nkXxyUr9z07fAuttFzTL3UEJQIDAQAB
-----END RSA PUBLIC KEY-----
";

/// A 1024-bit RSA public key: too small to be accepted.
#[allow(dead_code)]
pub const RSA_1024_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC59sKgTVpEUcJoAAsu/ooBCfJR
ENmdDo3BJ1PpEMQUs4NlvJ6saQOJm6+tvTky9ZPN11cJ8LDnzl6uC8h59p1BywnR
GeV7gYBFideEEetfTu07NZ/1YmXmfbpZ2Nnvow3WjlMZ9SB1/QiZa2fYRqYqYXiT
bX9rpCXmOPrHZLWVtwIDAQAB
-----END PUBLIC KEY-----
";

/// A P-256 private key (PKCS#8). Test-only.
#[allow(dead_code)]
pub const EC_P256_PRIVATE_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG4VSzGL//iDmTAwp
u/5quu7WE1hFxU9kL0AnpZhRrCqhRANCAARPCIC1ANhbf531aL/e1Q0hU/W8BcaV
xg0SH6APK7PfHPH1RqyYCqJgEBqKLamOXQ02czieRG+rznZUbr5YlmFa
-----END PRIVATE KEY-----
";

/// Its public key.
#[allow(dead_code)]
pub const EC_P256_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETwiAtQDYW3+d9Wi/3tUNIVP1vAXG
lcYNEh+gDyuz3xzx9UasmAqiYBAaii2pjl0NNnM4nkRvq852VG6+WJZhWg==
-----END PUBLIC KEY-----
";

/// An Ed25519 private key (PKCS#8). Test-only.
#[allow(dead_code)]
pub const ED25519_PRIVATE_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICYrSeXOjpiW6qG9u6ApnKBoSbCShw/KQ5dCEITWiFAp
-----END PRIVATE KEY-----
";

/// Its public key.
#[allow(dead_code)]
pub const ED25519_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAbXxE6SSaXoU9LN70WA3MBuWHvEA8f4oLt/PuINJnPPo=
-----END PUBLIC KEY-----
";
