/* make_rule_seeds.c -- writes the seed corpus of fuzz_rule_restore: a real
 * checkpoint of each of its rules after a short run, prefixed with the
 * rule's selector byte. Not part of the build; run by hand after a format
 * change:
 *
 *   cc -std=c17 -D_GNU_SOURCE -Isrc -DSEED_MAIN tests/fuzz/make_rule_seeds.c \
 *      build/libweircore.a $(pkg-config --libs jansson libxxhash libuv sqlite3 \
 *      libsodium libzstd inih libcurl libwebsockets openssl) -lm -lpthread -o /tmp/seeds
 *   /tmp/seeds tests/fuzz/corpus/fuzz_rule_restore
 */
#define main fuzz_main_unused
#include "fuzz_rule_restore.c"
#undef main

int main(int argc, char **argv);
int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    for (size_t i = 0; i < N_RULES; i++) {
        eng_rule *r = compile(i);
        rec_field f[2] = {{"v", 1, {.type = REC_INT}}, {"s", 1, {.type = REC_STRING}}};
        const char *keys[] = {"a", "b", "c"};
        for (int k = 0; k < 40; k++) {
            f[0].v.u.i = k * 3 % 11;
            f[1].v.u.s.p = (k / 3) % 2 ? "on" : "off";
            f[1].v.u.s.len = (uint32_t)strlen(f[1].v.u.s.p);
            record rec = {.ts = 1000000000LL * (k / 2) + (k % 3) * 300000000LL,
                          .key = keys[k % 3], .key_len = 1, .fields = f, .n_fields = 2};
            eng_input_rec in = {.input = (uint32_t)k % eng_rule_n_inputs(r),
                                .offset = (uint64_t)k, .commit_ns = rec.ts, .rec = &rec};
            eng_rule_push(r, &in, drop, NULL, NULL, 0);
        }
        weir_buf b;
        buf_init(&b, 0);
        uint8_t sel = (uint8_t)i;
        buf_append(&b, &sel, 1);
        eng_rule_checkpoint(r, &b);
        char path[512];
        snprintf(path, sizeof(path), "%s/seed_rule%zu", argv[1], i);
        FILE *fp = fopen(path, "wb");
        if (!fp)
            return 1;
        fwrite(buf_head(&b), 1, buf_used(&b), fp);
        fclose(fp);
        buf_free(&b);
        eng_rule_free(r);
    }
    return 0;
}
