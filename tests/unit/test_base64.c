/* Unit tests: common/base64.c */
#include <criterion/criterion.h>
#include <string.h>

#include "common/base64.h"

Test(base64, rfc4648_vectors)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[32];
    unsigned char dec[32];
    for (size_t i = 0; i < 7; i++) {
        size_t n = strlen(in[i]);
        cr_assert_eq(cm_base64_encode((const unsigned char *)in[i], n, out), strlen(std[i]));
        cr_assert_str_eq(out, std[i]);
        cr_assert_eq(cm_base64url_encode((const unsigned char *)in[i], n, out), strlen(url[i]));
        cr_assert_str_eq(out, url[i]);
        cr_assert_eq(cm_base64url_decode(url[i], strlen(url[i]), dec), (long)n);
        cr_assert_eq(memcmp(dec, in[i], n), 0);
        /* padding is optional on input */
        cr_assert_eq(cm_base64url_decode(std[i], strlen(std[i]), dec), (long)n, "padded %s", std[i]);
    }
}

Test(base64, websocket_accept_example)
{
    /* RFC 6455 1.3: SHA-1 of the key + GUID encodes to this. */
    static const unsigned char sha1[20] = {0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6,
                                           0x46, 0x06, 0xcf, 0x38, 0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea};
    char out[29];
    cr_assert_eq(cm_base64_encode(sha1, 20, out), 28);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(base64, url_alphabet)
{
    static const unsigned char in[] = {0xfb, 0xff, 0xbf};
    char out[8];
    unsigned char dec[8];
    cm_base64_encode(in, 3, out);
    cr_assert_str_eq(out, "+/+/");
    cm_base64url_encode(in, 3, out);
    cr_assert_str_eq(out, "-_-_");
    cr_assert_eq(cm_base64url_decode("-_-_", 4, dec), 3);
    cr_assert_eq(memcmp(dec, in, 3), 0);
    /* the standard alphabet's + and / are not base64url */
    cr_assert_eq(cm_base64url_decode("+/+/", 4, dec), -1);
}

Test(base64, decode_rejects_bad_input)
{
    unsigned char dec[16];
    const char *bad[] = {"A", "AAAAA", "Zg=", "Zg===", "Z===", "====", "Zm9v=", "Zm 9v", "Zm9v\n", "Zm*v",
                         "Zh", /* non-zero leftover bits: not canonical */
                         "Zm9=", "=Zm9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cm_base64url_decode(bad[i], strlen(bad[i]), dec), -1, "accepted \"%s\"", bad[i]);
    cr_assert_eq(cm_base64url_decode("", 0, dec), 0);
}

Test(base64, roundtrip_all_lengths_and_bytes)
{
    unsigned char in[300], dec[300 + 3];
    char out[4 * ((300 + 2) / 3) + 1];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t el = cm_base64url_encode(in, n, out);
        cr_assert_eq(el, strlen(out));
        cr_assert_eq(cm_base64url_decode(out, el, dec), (long)n);
        cr_assert_eq(memcmp(dec, in, n), 0, "length %zu", n);
        cr_assert_eq(cm_base64_encode(in, n, out), 4 * ((n + 2) / 3));
    }
}
