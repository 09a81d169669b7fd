//! AccessCheck on DACLs of 1, 10 and 100 ACEs, next to the straightforward per-right
//! reference implementation; SDDL parse throughput, next to reading the same
//! descriptor's binary form. Run with `cargo bench -p guise-impersonation --bench security`.

use divan::Bencher;
use divan::counter::BytesCount;
use guise::Sid;
use guise::security::{
    AccessCheckOptions, AccessMask, GenericMapping, SecurityDescriptor, access_check_with,
    reference_access_check, sddl,
};
use guise::token::{Group, GroupAttributes};

fn main() {
    divan::main();
}

/// A DACL of `n` ACEs for other principals, then the ACE that grants the reader:
/// the check has to read the whole list.
fn descriptor(n: usize) -> String {
    let mut s = String::from("O:BAG:BAD:");
    for i in 1..n {
        let kind = if i % 4 == 0 { "D" } else { "A" };
        s.push_str(&format!(
            "({kind};;0x{:x};;;S-1-22-2-{})",
            1 + i % 7,
            62000 + i
        ));
    }
    s.push_str("(A;;FR;;;S-1-22-2-61100)");
    s
}

fn token() -> guise::Token {
    let groups = (0..16).map(|i| Group {
        sid: Sid::unix_group(61090 + i),
        attributes: GroupAttributes::DEFAULT,
    });
    guise::Token::from_sids(
        Sid::unix_user(61001),
        groups.chain([Group {
            sid: Sid::EVERYONE,
            attributes: GroupAttributes::DEFAULT,
        }]),
        [],
    )
}

const ACES: &[usize] = &[1, 10, 100];

#[divan::bench(args = ACES)]
fn access_check(b: Bencher, n: usize) {
    let sd = sddl::parse(&descriptor(n), None).unwrap();
    let t = token();
    b.bench_local(|| {
        access_check_with(
            divan::black_box(&sd),
            &t,
            AccessMask::FILE_GENERIC_READ,
            &GenericMapping::FILE,
            AccessCheckOptions::default(),
        )
        .unwrap()
    });
}

#[divan::bench(args = ACES)]
fn access_check_reference(b: Bencher, n: usize) {
    let sd = sddl::parse(&descriptor(n), None).unwrap();
    let t = token();
    b.bench_local(|| {
        reference_access_check(
            divan::black_box(&sd),
            &t,
            AccessMask::FILE_GENERIC_READ,
            &GenericMapping::FILE,
            AccessCheckOptions::default(),
        )
        .unwrap()
    });
}

#[divan::bench(args = ACES, sample_size = 64)]
fn sddl_parse(b: Bencher, n: usize) {
    let text = descriptor(n);
    b.counter(BytesCount::of_str(&text)).bench_local(|| {
        // Parsed and freed within the sample: divan then times many per sample.
        divan::black_box(sddl::parse(divan::black_box(&text), None).unwrap());
    });
}

#[divan::bench(args = ACES, sample_size = 64)]
fn binary_parse(b: Bencher, n: usize) {
    let bin = sddl::parse(&descriptor(n), None)
        .unwrap()
        .to_self_relative()
        .unwrap();
    b.counter(BytesCount::of_slice(&bin)).bench_local(|| {
        divan::black_box(SecurityDescriptor::from_self_relative(divan::black_box(&bin)).unwrap());
    });
}

#[divan::bench(args = ACES)]
fn sddl_print(b: Bencher, n: usize) {
    let sd = sddl::parse(&descriptor(n), None).unwrap();
    b.bench_local(|| sddl::to_string(divan::black_box(&sd), None).unwrap());
}

/// A file three directories down, with a POSIX ACL (a named user, a named
/// group, a mask): what `file_access_check` reads and decides, next to the
/// kernel answering the same question for the caller itself (`faccessat`).
fn acl_file() -> (tempfile::TempDir, std::path::PathBuf) {
    use guise::security::file::{AclEntry, AclTag, PosixAcl};
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    let file = deep.join("report.txt");
    std::fs::write(&file, "x").unwrap();
    let acl = PosixAcl {
        entries: [
            (AclTag::UserObj, 6),
            (AclTag::User(61001), 6),
            (AclTag::GroupObj, 4),
            (AclTag::Group(61101), 4),
            (AclTag::Mask, 6),
            (AclTag::Other, 0),
        ]
        .into_iter()
        .map(|(tag, perm)| AclEntry { tag, perm })
        .collect(),
    };
    rustix::fs::setxattr(
        &file,
        "system.posix_acl_access",
        &acl.to_xattr(),
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    (dir, file)
}

/// `file_access_check`: the path walked (four directories), the file's
/// descriptor built from its stat and ACL, and AccessCheck.
#[divan::bench]
fn file_access_check(b: Bencher) {
    let (_dir, file) = acl_file();
    let t = token();
    b.bench_local(|| {
        guise::security::file_access_check(
            divan::black_box(&file),
            &t,
            AccessMask::FILE_GENERIC_READ,
            AccessCheckOptions::default(),
        )
        .unwrap()
    });
}

/// The baseline: the kernel's own `faccessat` of the same path for the caller.
#[divan::bench]
fn file_faccessat(b: Bencher) {
    let (_dir, file) = acl_file();
    b.bench_local(|| rustix::fs::access(divan::black_box(&file), rustix::fs::Access::READ_OK));
}
