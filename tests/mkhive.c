/* mkhive - write a valid, empty Windows registry hive (regf) file.
 *
 * Usage: mkhive OUTFILE [ROOTNAME]
 *
 * Test-fixture helper for netvsc-patch.  The result holds a base block and
 * one 4096-byte hive bin containing the root key node (no subkeys, no
 * values), one key security (sk) cell and a single free cell for the rest
 * of the bin.  It opens in hivex, and hivexregedit --merge can add keys to
 * it (new keys inherit the root's security cell).
 *
 * Written from the public description of the format ("Windows registry
 * file format specification", M. Suhanov).  No dependencies beyond libc;
 * all fields are stored little-endian whatever the host byte order.
 *
 * The output is deterministic: the "last written" timestamp is fixed
 * (2020-01-01 00:00:00 UTC) unless SOURCE_DATE_EPOCH is set.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_BLOCK_SIZE 4096u
#define HBIN_SIZE       4096u
#define HBIN_HDR_SIZE   32u

/* Offsets below are relative to the start of the hive bins data, as the
 * format stores them.  The root key is the first cell after the header. */
#define ROOT_CELL_OFF   HBIN_HDR_SIZE

#define KEY_HIVE_ENTRY  0x0004u
#define KEY_NO_DELETE   0x0008u
#define KEY_COMP_NAME   0x0020u

#define NO_OFFSET       0xFFFFFFFFu

#define KEY_ALL_ACCESS  0x000F003Fu
#define ACCESS_ALLOWED_ACE_TYPE 0x00u
#define CONTAINER_INHERIT_ACE   0x02u

#define SE_DACL_PRESENT  0x0004u
#define SE_SELF_RELATIVE 0x8000u

/* 2020-01-01T00:00:00Z as a FILETIME (100 ns ticks since 1601-01-01). */
#define DEFAULT_FILETIME 132223104000000000ull
#define FILETIME_UNIX_EPOCH_SECS 11644473600ull

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t align8(uint32_t n)
{
    return (n + 7u) & ~7u;
}

/* Write a SID S-1-<auth>-<sub...>; returns its length in bytes. */
static uint32_t put_sid(unsigned char *p, uint8_t auth, const uint32_t *sub,
                        uint8_t nsub)
{
    p[0] = 1;          /* revision */
    p[1] = nsub;       /* sub-authority count */
    memset(p + 2, 0, 6);
    p[7] = auth;       /* identifier authority, big-endian 48-bit */
    for (uint8_t i = 0; i < nsub; i++)
        put32(p + 8 + 4u * i, sub[i]);
    return 8u + 4u * nsub;
}

/* Write an ACCESS_ALLOWED ACE; returns its length in bytes. */
static uint32_t put_allow_ace(unsigned char *p, uint32_t mask, uint8_t auth,
                              const uint32_t *sub, uint8_t nsub)
{
    uint32_t sidlen = put_sid(p + 8, auth, sub, nsub);
    uint32_t len = 8u + sidlen;
    p[0] = ACCESS_ALLOWED_ACE_TYPE;
    p[1] = CONTAINER_INHERIT_ACE;
    put16(p + 2, (uint16_t)len);
    put32(p + 4, mask);
    return len;
}

/* Build the self-relative security descriptor at p; returns its length.
 * Owner BUILTIN\Administrators (S-1-5-32-544), group SYSTEM (S-1-5-18),
 * no SACL, a DACL allowing KEY_ALL_ACCESS to SYSTEM and Administrators
 * (inherited by subkeys). */
static uint32_t put_security_descriptor(unsigned char *p)
{
    static const uint32_t system_sub[] = { 18 };
    static const uint32_t admins_sub[] = { 32, 544 };
    const uint32_t hdr = 20;
    uint32_t off = hdr;

    /* DACL */
    uint32_t dacl_off = off;
    uint32_t acl_len = 8;
    acl_len += put_allow_ace(p + dacl_off + acl_len, KEY_ALL_ACCESS, 5,
                             system_sub, 1);
    acl_len += put_allow_ace(p + dacl_off + acl_len, KEY_ALL_ACCESS, 5,
                             admins_sub, 2);
    p[dacl_off + 0] = 2;                 /* ACL_REVISION */
    p[dacl_off + 1] = 0;
    put16(p + dacl_off + 2, (uint16_t)acl_len);
    put16(p + dacl_off + 4, 2);          /* ACE count */
    put16(p + dacl_off + 6, 0);
    off += acl_len;

    uint32_t owner_off = off;
    off += put_sid(p + owner_off, 5, admins_sub, 2);
    uint32_t group_off = off;
    off += put_sid(p + group_off, 5, system_sub, 1);

    p[0] = 1;                            /* revision */
    p[1] = 0;
    put16(p + 2, SE_SELF_RELATIVE | SE_DACL_PRESENT);
    put32(p + 4, owner_off);
    put32(p + 8, group_off);
    put32(p + 12, 0);                    /* no SACL */
    put32(p + 16, dacl_off);
    return off;
}

static uint32_t header_checksum(const unsigned char *base)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < 0x1FCu; i += 4)
        sum ^= get32(base + i);
    return sum;
}

static uint64_t timestamp(void)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde != NULL && *sde != '\0') {
        char *end;
        errno = 0;
        unsigned long long secs = strtoull(sde, &end, 10);
        if (errno == 0 && *end == '\0')
            return (secs + FILETIME_UNIX_EPOCH_SECS) * 10000000ull;
        fprintf(stderr, "mkhive: ignoring bad SOURCE_DATE_EPOCH '%s'\n", sde);
    }
    return DEFAULT_FILETIME;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: mkhive OUTFILE [ROOTNAME]\n");
        return 2;
    }
    const char *outfile = argv[1];
    const char *rootname = argc == 3 ? argv[2] : "ROOT";
    size_t namelen = strlen(rootname);
    if (namelen == 0 || namelen > 255) {
        fprintf(stderr, "mkhive: ROOTNAME must be 1 to 255 characters\n");
        return 2;
    }
    for (size_t i = 0; i < namelen; i++) {
        unsigned char c = (unsigned char)rootname[i];
        if (c < 0x20 || c > 0x7e || c == '\\') {
            fprintf(stderr, "mkhive: ROOTNAME must be printable ASCII "
                    "without backslashes\n");
            return 2;
        }
    }

    static unsigned char file[BASE_BLOCK_SIZE + HBIN_SIZE];
    unsigned char *base = file;
    unsigned char *bins = file + BASE_BLOCK_SIZE;
    uint64_t ts = timestamp();

    /* --- hive bin header --- */
    memcpy(bins, "hbin", 4);
    put32(bins + 4, 0);                 /* offset of this bin */
    put32(bins + 8, HBIN_SIZE);
    put64(bins + 20, ts);

    /* --- root key node --- */
    uint32_t nk_off = ROOT_CELL_OFF;
    uint32_t nk_size = align8(4u + 76u + (uint32_t)namelen);
    uint32_t sk_off = nk_off + nk_size;
    unsigned char *nk = bins + nk_off;
    put32(nk, (uint32_t)-(int32_t)nk_size);   /* negative: allocated */
    unsigned char *k = nk + 4;
    memcpy(k, "nk", 2);
    put16(k + 2, KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME);
    put64(k + 4, ts);
    put32(k + 12, 0);                   /* spare */
    put32(k + 16, NO_OFFSET);           /* parent: none for the root */
    put32(k + 20, 0);                   /* subkeys */
    put32(k + 24, 0);                   /* volatile subkeys */
    put32(k + 28, NO_OFFSET);           /* subkeys list */
    put32(k + 32, NO_OFFSET);           /* volatile subkeys list */
    put32(k + 36, 0);                   /* values */
    put32(k + 40, NO_OFFSET);           /* values list */
    put32(k + 44, sk_off);              /* key security */
    put32(k + 48, NO_OFFSET);           /* class name */
    /* 52..71: largest name/class/value lengths, WorkVar: all zero */
    put16(k + 72, (uint16_t)namelen);
    put16(k + 74, 0);                   /* class name length */
    memcpy(k + 76, rootname, namelen);

    /* --- key security cell --- */
    unsigned char *sk = bins + sk_off;
    unsigned char *s = sk + 4;
    memcpy(s, "sk", 2);
    put16(s + 2, 0);
    put32(s + 4, sk_off);               /* flink: only entry -> itself */
    put32(s + 8, sk_off);               /* blink */
    put32(s + 12, 1);                   /* reference count: the root */
    uint32_t sd_len = put_security_descriptor(s + 20);
    put32(s + 16, sd_len);
    uint32_t sk_size = align8(4u + 20u + sd_len);
    put32(sk, (uint32_t)-(int32_t)sk_size);

    /* --- the rest of the bin: one free cell (positive size) --- */
    uint32_t free_off = sk_off + sk_size;
    put32(bins + free_off, HBIN_SIZE - free_off);

    /* --- base block --- */
    memcpy(base, "regf", 4);
    put32(base + 4, 1);                 /* primary sequence number */
    put32(base + 8, 1);                 /* secondary: equal = clean */
    put64(base + 12, ts);
    put32(base + 20, 1);                /* major version */
    put32(base + 24, 3);                /* minor version */
    put32(base + 28, 0);                /* file type: primary */
    put32(base + 32, 1);                /* file format: direct memory load */
    put32(base + 36, nk_off);           /* root cell offset */
    put32(base + 40, HBIN_SIZE);        /* hive bins data size */
    put32(base + 44, 1);                /* clustering factor */
    /* File name (debugging aid): the root name, UTF-16LE, max 31 chars. */
    for (size_t i = 0; i < namelen && i < 31; i++)
        put16(base + 48 + 2 * i, (uint16_t)(unsigned char)rootname[i]);

    uint32_t sum = header_checksum(base);
    /* Windows never stores 0 or 0xFFFFFFFF as a checksum (it maps them to
     * 1 and 0xFFFFFFFE) while other readers compare the plain XOR; nudge
     * the timestamp so both agree. */
    while (sum == 0 || sum == 0xFFFFFFFFu) {
        ts++;
        put64(base + 12, ts);
        put64(bins + 20, ts);
        sum = header_checksum(base);
    }
    put32(base + 0x1FC, sum);

    FILE *f = fopen(outfile, "wb");
    if (f == NULL) {
        fprintf(stderr, "mkhive: %s: %s\n", outfile, strerror(errno));
        return 1;
    }
    if (fwrite(file, 1, sizeof file, f) != sizeof file) {
        fprintf(stderr, "mkhive: %s: write failed: %s\n", outfile,
                strerror(errno));
        fclose(f);
        return 1;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "mkhive: %s: %s\n", outfile, strerror(errno));
        return 1;
    }
    return 0;
}
