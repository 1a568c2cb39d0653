#!/usr/bin/perl
# Writes asn.mmdb, the small ASN database the look-up tests read (the unit
# tests and tests/netns/test_names.sh): the ASN layout of the free
# GeoLite2/DB-IP ASN databases for the test network's links, each its own
# AS. Needs Debian's libmaxmind-db-writer-perl; the file is committed, so
# the tests do not.
#   perl tests/data/make_asn_mmdb.pl tests/data/asn.mmdb
# Link i (1..8) of the forward chain: 198.18.i.0/24 and 2001:db8:1:i::/64,
# AS 64510+i, "MMDB-HOP-i"; of the return chain 198.19.j.0/24 and
# 2001:db8:2:j::/64, AS 64530+j, "MMDB-BACK-j".
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift // die "usage: $0 OUT.mmdb\n";
my %types = (autonomous_system_number => 'uint32', autonomous_system_organization => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version => 6,
    record_size => 24,
    database_type => 'GeoLite2-ASN',
    languages => ['en'],
    description => { en => 'nfqtrace test ASN database' },
    map_key_type_callback => sub { $types{ $_[0] } },
    # The test network is in reserved space (RFC 2544, RFC 3849).
    remove_reserved_networks => 0,
);
for my $i (1 .. 8) {
    my $fwd = { autonomous_system_number => 64510 + $i, autonomous_system_organization => "MMDB-HOP-$i" };
    $tree->insert_network("198.18.$i.0/24", $fwd);
    $tree->insert_network("2001:db8:1:$i\::/64", $fwd);
    my $back = { autonomous_system_number => 64530 + $i, autonomous_system_organization => "MMDB-BACK-$i" };
    $tree->insert_network("198.19.$i.0/24", $back);
    $tree->insert_network("2001:db8:2:$i\::/64", $back);
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
