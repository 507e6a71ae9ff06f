/*
 * meshca's native signature checks for the issuance hot path (Node-API, C).
 *
 * Why this exists: in Node 20 with OpenSSL 3.0, checking a CSR's signature through node:crypto
 * costs about 175 µs for an EC P-256 request, against 51 µs for the verification itself
 * (`openssl speed ecdsap256`). The rest is loading a fresh public key: the JWK import builds a
 * new EC_GROUP from the curve's parameters and runs a full key check (a scalar multiplication),
 * and the first use of that key exports it again to OpenSSL 3's provider, building a second
 * group. Every CSR carries a new key, so that cost is paid on every request.
 *
 * Here each curve's group and a reusable EC_KEY are made once per Node environment (main thread
 * or worker thread, through Node-API instance data), and a request costs one point decoding
 * (which checks that the point lies on the curve; P-256 and P-384 have cofactor 1, so that is a
 * complete public-key validation) plus the ECDSA verification. RSA keys are built from the
 * modulus and exponent bytes and checked with RSA_verify (PKCS#1 v1.5, exact DigestInfo).
 *
 * The functions use only OpenSSL's public API, linked from the node binary itself, which exports
 * its OpenSSL symbols for addons; the headers are Node's own (include/node/openssl), so the ABI
 * always matches the OpenSSL that node runs. Deprecated-in-3.0 low-level calls (EC_KEY, RSA,
 * SHA*_Init) are used on purpose: they skip the provider machinery that makes the EVP path slow.
 *
 * Signing (ecSignerNew/ecSign) keeps the CA's EC key in an EC_KEY that lives as long as the
 * JavaScript handle; EC_KEY_free clears the private scalar. The key never leaves the module.
 * Inputs are validated and every failure clears OpenSSL's
 * per-thread error queue, so that no stale error leaks into node:crypto's own reporting.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define CURVES 2

typedef struct {
  EC_GROUP *group[CURVES];
  EC_KEY *key[CURVES];
  EC_POINT *point[CURVES];
} state_t;

static const int CURVE_NIDS[CURVES] = {NID_X9_62_prime256v1, NID_secp384r1};
static const size_t CURVE_COORD[CURVES] = {32, 48};

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  state_t *s = data;
  for (int i = 0; i < CURVES; i++) {
    if (s->point[i]) EC_POINT_free(s->point[i]);
    if (s->key[i]) EC_KEY_free(s->key[i]);
    if (s->group[i]) EC_GROUP_free(s->group[i]);
  }
  free(s);
}

static state_t *new_state(void) {
  state_t *s = calloc(1, sizeof(state_t));
  if (!s) return NULL;
  for (int i = 0; i < CURVES; i++) {
    s->group[i] = EC_GROUP_new_by_curve_name(CURVE_NIDS[i]);
    s->key[i] = EC_KEY_new();
    if (!s->group[i] || !s->key[i] || EC_KEY_set_group(s->key[i], s->group[i]) != 1) goto fail;
    s->point[i] = EC_POINT_new(s->group[i]);
    if (!s->point[i]) goto fail;
  }
  return s;
fail:
  ERR_clear_error();
  free_state(NULL, s, NULL);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

/* Any TypedArray/Buffer (Uint8Array) view: pointer and length. */
static int get_bytes(napi_env env, napi_value v, const unsigned char **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

/* hash ids: 0 SHA-256, 1 SHA-384, 2 SHA-512. Returns the digest length, 0 on a bad id. */
static size_t digest(uint32_t hash, const unsigned char *data, size_t len, unsigned char *out, int *nid) {
  switch (hash) {
    case 0: {
      SHA256_CTX c;
      SHA256_Init(&c);
      SHA256_Update(&c, data, len);
      SHA256_Final(out, &c);
      *nid = NID_sha256;
      return SHA256_DIGEST_LENGTH;
    }
    case 1: {
      SHA512_CTX c;
      SHA384_Init(&c);
      SHA384_Update(&c, data, len);
      SHA384_Final(out, &c);
      *nid = NID_sha384;
      return SHA384_DIGEST_LENGTH;
    }
    case 2: {
      SHA512_CTX c;
      SHA512_Init(&c);
      SHA512_Update(&c, data, len);
      SHA512_Final(out, &c);
      *nid = NID_sha512;
      return SHA512_DIGEST_LENGTH;
    }
    default:
      return 0;
  }
}

static napi_value make_int(napi_env env, int v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static state_t *state_of(napi_env env) {
  void *d = NULL;
  napi_get_instance_data(env, &d);
  return d;
}

/* Decodes an uncompressed point into the curve's scratch point; 1 when it lies on the curve. */
static int load_point(state_t *s, uint32_t curve, const unsigned char *pt, size_t len) {
  if (len != 1 + 2 * CURVE_COORD[curve] || pt[0] != 0x04) return 0;
  if (EC_POINT_oct2point(s->group[curve], s->point[curve], pt, len, NULL) != 1) {
    ERR_clear_error();
    return 0;
  }
  return 1;
}

/* ecPointValid(curve, point): true when the uncompressed point encodes a point of the curve. */
static napi_value ec_point_valid(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t curve;
  const unsigned char *pt;
  size_t ptlen;
  if (argc != 2 || !get_u32(env, argv[0], &curve) || curve >= CURVES) return throw_type(env, "ecPointValid(curve 0|1, point)");
  if (!get_bytes(env, argv[1], &pt, &ptlen)) return throw_type(env, "ecPointValid: point must be a Uint8Array");
  state_t *s = state_of(env);
  napi_value r;
  napi_get_boolean(env, load_point(s, curve, pt, ptlen), &r);
  return r;
}

/*
 * ecVerify(curve, point, hash, data, signature): 1 verified, 0 the signature does not verify
 * (including a signature that is not DER), -1 the point is not on the curve.
 */
static napi_value ec_verify(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t curve, hash;
  const unsigned char *pt, *data, *sig;
  size_t ptlen, dlen, siglen;
  if (argc != 5 || !get_u32(env, argv[0], &curve) || curve >= CURVES || !get_u32(env, argv[2], &hash) || hash > 2) {
    return throw_type(env, "ecVerify(curve 0|1, point, hash 0|1|2, data, signature)");
  }
  if (!get_bytes(env, argv[1], &pt, &ptlen) || !get_bytes(env, argv[3], &data, &dlen) || !get_bytes(env, argv[4], &sig, &siglen)) {
    return throw_type(env, "ecVerify: point, data and signature must be Uint8Arrays");
  }
  state_t *s = state_of(env);
  if (!load_point(s, curve, pt, ptlen)) return make_int(env, -1);
  if (EC_KEY_set_public_key(s->key[curve], s->point[curve]) != 1) {
    ERR_clear_error();
    return make_int(env, -1);
  }
  unsigned char md[SHA512_DIGEST_LENGTH];
  int nid;
  size_t mdlen = digest(hash, data, dlen, md, &nid);
  /* ECDSA_verify parses the DER signature and refuses any other encoding of it (re-encodes and compares). */
  int ok = siglen > 0 && siglen < 0x7fffffff ? ECDSA_verify(0, md, (int)mdlen, sig, (int)siglen, s->key[curve]) : 0;
  if (ok != 1) ERR_clear_error();
  return make_int(env, ok == 1 ? 1 : 0);
}

/* rsaVerify(modulus, exponent, hash, data, signature): 1 verified, 0 not, -1 unusable key. */
static napi_value rsa_verify(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t hash;
  const unsigned char *n, *e, *data, *sig;
  size_t nlen, elen, dlen, siglen;
  if (argc != 5 || !get_u32(env, argv[2], &hash) || hash > 2) return throw_type(env, "rsaVerify(modulus, exponent, hash 0|1|2, data, signature)");
  if (!get_bytes(env, argv[0], &n, &nlen) || !get_bytes(env, argv[1], &e, &elen) || !get_bytes(env, argv[3], &data, &dlen) ||
      !get_bytes(env, argv[4], &sig, &siglen)) {
    return throw_type(env, "rsaVerify: modulus, exponent, data and signature must be Uint8Arrays");
  }
  if (nlen == 0 || nlen > 1024 || elen == 0 || elen > 16) return make_int(env, -1);
  RSA *rsa = RSA_new();
  BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL);
  BIGNUM *bn_e = BN_bin2bn(e, (int)elen, NULL);
  if (!rsa || !bn_n || !bn_e || RSA_set0_key(rsa, bn_n, bn_e, NULL) != 1) {
    BN_free(bn_n);
    BN_free(bn_e);
    RSA_free(rsa);
    ERR_clear_error();
    return make_int(env, -1);
  }
  unsigned char md[SHA512_DIGEST_LENGTH];
  int nid;
  size_t mdlen = digest(hash, data, dlen, md, &nid);
  /* RSA_verify refuses a signature whose length differs from the modulus and compares the whole DigestInfo. */
  int ok = siglen < 0x7fffffff ? RSA_verify(nid, md, (unsigned int)mdlen, sig, (unsigned int)siglen, rsa) : 0;
  RSA_free(rsa);
  if (ok != 1) ERR_clear_error();
  return make_int(env, ok == 1 ? 1 : 0);
}

static void free_signer(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  EC_KEY_free(data);
}

/* ecSignerNew(curve, d): a handle on the EC private key with scalar d (big-endian, the curve's size). */
static napi_value ec_signer_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t curve;
  const unsigned char *d;
  size_t dlen;
  if (argc != 2 || !get_u32(env, argv[0], &curve) || curve >= CURVES || !get_bytes(env, argv[1], &d, &dlen)) {
    return throw_type(env, "ecSignerNew(curve 0|1, privateScalar)");
  }
  state_t *s = state_of(env);
  const EC_GROUP *group = s->group[curve];
  EC_KEY *key = EC_KEY_new();
  BIGNUM *priv = BN_bin2bn(d, (int)dlen, NULL);
  EC_POINT *pub = EC_POINT_new(group);
  int ok = key && priv && pub && dlen == CURVE_COORD[curve] && !BN_is_zero(priv) && BN_cmp(priv, EC_GROUP_get0_order(group)) < 0 &&
           EC_KEY_set_group(key, group) == 1 && EC_KEY_set_private_key(key, priv) == 1 &&
           EC_POINT_mul(group, pub, priv, NULL, NULL, NULL) == 1 && EC_KEY_set_public_key(key, pub) == 1 && EC_KEY_check_key(key) == 1;
  BN_clear_free(priv);
  EC_POINT_free(pub);
  if (!ok) {
    EC_KEY_free(key);
    ERR_clear_error();
    napi_throw_error(env, NULL, "ecSignerNew: not a valid private key for the curve");
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, key, free_signer, NULL, &handle) != napi_ok) {
    EC_KEY_free(key);
    return NULL;
  }
  return handle;
}

/* ecSign(handle, hash, data): the DER ECDSA signature of data's digest. */
static napi_value ec_sign(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t;
  uint32_t hash;
  const unsigned char *data;
  size_t dlen;
  if (argc != 3 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || !get_u32(env, argv[1], &hash) || hash > 2 ||
      !get_bytes(env, argv[2], &data, &dlen)) {
    return throw_type(env, "ecSign(signer, hash 0|1|2, data)");
  }
  EC_KEY *key;
  napi_get_value_external(env, argv[0], (void **)&key);
  unsigned char md[SHA512_DIGEST_LENGTH];
  int nid;
  size_t mdlen = digest(hash, data, dlen, md, &nid);
  unsigned char sig[160]; /* ECDSA_size is 72 for P-256, 104 for P-384 */
  unsigned int siglen = 0;
  if ((size_t)ECDSA_size(key) > sizeof(sig) || ECDSA_sign(0, md, (int)mdlen, sig, &siglen, key) != 1) {
    ERR_clear_error();
    napi_throw_error(env, NULL, "ecSign: signing failed");
    return NULL;
  }
  napi_value out;
  void *p;
  if (napi_create_buffer_copy(env, siglen, sig, &p, &out) != napi_ok) return NULL;
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  state_t *s = new_state();
  if (!s) {
    napi_throw_error(env, NULL, "meshca native: cannot set up the P-256/P-384 groups");
    return NULL;
  }
  if (napi_set_instance_data(env, s, free_state, NULL) != napi_ok) {
    free_state(env, s, NULL);
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"ecPointValid", NULL, ec_point_valid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ecVerify", NULL, ec_verify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rsaVerify", NULL, rsa_verify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ecSignerNew", NULL, ec_signer_new, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ecSign", NULL, ec_sign, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}
