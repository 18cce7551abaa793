package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The "egress" network: every environment keeps a network namespace of its own (its Runtime API
// and extension ports on its own loopback, as with "none") and gets one veth pair to the host,
// with a /30 of egressPool: 169.254.a.b+1 on the host's end ("flintv<slot>"), +2 on the
// environment's ("eth0", its default route). The host masquerades what environments send to the
// rest of the world and drops everything else they send: to the host itself (any of its
// addresses, so no host service on 0.0.0.0 is reachable; 127.0.0.1 is not routable from outside
// anyway), to other environments, to link-local addresses (cloud metadata services; DNS
// excepted), from addresses not its own, and over IPv6; nothing can open a connection into an
// environment.
const (
	// vethPrefix names the host end of every environment's veth on every Flint server of the
	// host. The nftables rules match it; the kernel's refusal of a second interface of one name is
	// what keeps two servers from taking the same slot (and so the same addresses).
	vethPrefix = "flintv"
	guestIf    = "eth0"
	// nftTable holds the egress rules. They depend on nothing but vethPrefix and egressPool, so
	// every server installs the same table and one server's environments are covered by another's.
	nftTable = "flint"
	// nftGuardTable drops forwarded traffic that is not an environment's, installed only when
	// Flint is what turned IPv4 forwarding on: the host then forwards nothing it did not before.
	nftGuardTable = "flint-forward-guard"
)

// egressPool is where environments' /30s come from: link-local, which no network beyond the host
// routes, and the lower half of it, away from the addresses cloud platforms use
// (169.254.169.254, 169.254.170.2). Slots overlapping a route of the host are skipped.
var egressPool = netip.MustParsePrefix("169.254.0.0/17")

const egressSlots = 1 << (32 - 17 - 2)

// egress hands out veth pairs and their addresses to environments.
type egress struct {
	rt *netlink.Handle // rtnetlink in the server's network namespace

	mu   sync.Mutex
	held map[int]bool // slots this backend's environments hold
	bad  map[int]bool // slots overlapping one of the host's routes
	next int          // round robin: a slot just given back may still be in the kernel's hands
}

// veth is an environment's veth pair.
type veth struct {
	slot int
	name string // the host end
}

// slotAddrs are a slot's host and guest addresses.
func slotAddrs(slot int) (host, guest netip.Addr) {
	b := egressPool.Addr().As4()
	base := binary.BigEndian.Uint32(b[:]) + uint32(slot)*4
	binary.BigEndian.PutUint32(b[:], base+1)
	host = netip.AddrFrom4(b)
	binary.BigEndian.PutUint32(b[:], base+2)
	return host, netip.AddrFrom4(b)
}

func newEgress() (*egress, error) {
	rt, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	e := &egress{rt: rt, held: map[int]bool{}, bad: map[int]bool{}}
	if err := e.avoidRoutes(); err != nil {
		rt.Close()
		return nil, err
	}
	return e, nil
}

// avoidRoutes marks the slots that overlap a route of the host (in any table, local addresses
// included) more specific than the pool: those addresses are in use here. Routes covering the
// whole pool (a default route, a zeroconf 169.254.0.0/16) are fine: a /30 is more specific.
func (e *egress) avoidRoutes() error {
	links, err := e.rt.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	ours := map[int]bool{}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, vethPrefix) {
			ours[l.Attrs().Index] = true
		}
	}
	routes, err := e.rt.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || ours[r.LinkIndex] {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok || ones <= egressPool.Bits() {
			continue
		}
		p := netip.PrefixFrom(a, ones).Masked()
		if !egressPool.Overlaps(p) {
			continue
		}
		pb, base := p.Addr().As4(), egressPool.Addr().As4()
		first := (binary.BigEndian.Uint32(pb[:]) - binary.BigEndian.Uint32(base[:])) / 4
		n := uint32(1)
		if ones < 30 {
			n = 1 << (30 - ones)
		}
		for s := first; s < first+n && s < egressSlots; s++ {
			e.bad[int(s)] = true
		}
	}
	return nil
}

func (e *egress) close() { e.rt.Close() }

// take reserves the next free slot.
func (e *egress) take() (int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range egressSlots {
		s := e.next
		e.next = (e.next + 1) % egressSlots
		if !e.held[s] && !e.bad[s] {
			e.held[s] = true
			return s, true
		}
	}
	return 0, false
}

func (e *egress) release(slot int) {
	e.mu.Lock()
	delete(e.held, slot)
	e.mu.Unlock()
}

// attach gives the network namespace of pid a veth pair to the host: eth0 with its address and
// default route there, the host end with its address, both up.
func (e *egress) attach(pid int) (*veth, error) {
	var v *veth
	for tries := 0; v == nil; tries++ {
		slot, ok := e.take()
		if !ok || tries == egressSlots {
			return nil, errors.New("veth: no free address in " + egressPool.String())
		}
		name := vethPrefix + strconv.Itoa(slot)
		err := e.rt.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: guestIf,
			PeerNamespace: netlink.NsPid(pid)})
		switch {
		case errors.Is(err, unix.EEXIST):
			// Another server's, or one of ours whose namespace the kernel has not let go of yet:
			// try the next slot, and this one again only once round.
			e.release(slot)
		case err != nil:
			e.release(slot)
			return nil, fmt.Errorf("veth %s: %w", name, err)
		default:
			v = &veth{slot: slot, name: name}
		}
	}
	if err := e.configure(v, pid); err != nil {
		e.detach(v)
		return nil, fmt.Errorf("veth %s: %w", v.name, err)
	}
	return v, nil
}

func (e *egress) configure(v *veth, pid int) error {
	hostAddr, guestAddr := slotAddrs(v.slot)
	link, err := e.rt.LinkByName(v.name)
	if err != nil {
		return err
	}
	if err := e.rt.AddrAdd(link, &netlink.Addr{IPNet: ipNet(hostAddr, 30)}); err != nil {
		return fmt.Errorf("host address: %w", err)
	}
	if err := e.rt.LinkSetUp(link); err != nil {
		return fmt.Errorf("host end up: %w", err)
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("environment's namespace: %w", err)
	}
	defer ns.Close()
	// The socket is the environment namespace's for as long as it is open: closed here, so
	// that nothing of the server keeps that namespace (and the veth) alive.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("rtnetlink in the environment: %w", err)
	}
	defer h.Close()
	guest, err := h.LinkByName(guestIf)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(guest, &netlink.Addr{IPNet: ipNet(guestAddr, 30)}); err != nil {
		return fmt.Errorf("guest address: %w", err)
	}
	if err := h.LinkSetUp(guest); err != nil {
		return fmt.Errorf("guest end up: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: guest.Attrs().Index, Gw: hostAddr.AsSlice()}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	return nil
}

// detach gives the slot back once the environment's init is dead. The kernel deletes the pair
// with the environment's network namespace, in the background: deleting it here would cost the
// caller tens of ms (RCU grace periods under the RTNL lock), and a name the kernel still holds is
// skipped by attach.
func (e *egress) detach(v *veth) {
	if v != nil {
		e.release(v.slot)
	}
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// setupFirewall installs the egress rules (nftables, table inet flint) and turns IPv4 forwarding
// on if it is off, with the guard that keeps the host from forwarding anything else.
func setupFirewall(log *slog.Logger) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: nftTable})
	c.FlushTable(t) // the same rules every time: one transaction replaces whatever was there
	accept, drop := nftables.ChainPolicyAccept, &expr.Verdict{Kind: expr.VerdictDrop}
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Hooknum: hook, Priority: prio, Type: typ, Policy: &accept})
	}
	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: all})
	}
	verdict := func(v expr.Any) []expr.Any { return []expr.Any{v} }
	input := chain("input", nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	// Nothing from an environment is for the host: no address of it, no service on it.
	rule(input, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), verdict(drop))
	fwd := chain("forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	rule(fwd, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq), verdict(drop))
	rule(fwd, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), nfproto(unix.NFPROTO_IPV6), verdict(drop))
	// Environments have no capability to change their address; should one anyway, its packets
	// would leave without NAT.
	rule(fwd, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), nfproto(unix.NFPROTO_IPV4), ipNotIn(12, egressPool), verdict(drop))
	// Name servers on link-local addresses (GCE's metadata server, AWS's 169.254.169.253) keep
	// answering: DNS only.
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		rule(fwd, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), nfproto(unix.NFPROTO_IPV4),
			ipIn(16, netip.MustParsePrefix("169.254.0.0/16")), l4dport(proto, 53), verdict(&expr.Verdict{Kind: expr.VerdictAccept}))
	}
	for _, p := range []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("224.0.0.0/3")} {
		rule(fwd, ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq), nfproto(unix.NFPROTO_IPV4), ipIn(16, p), verdict(drop))
	}
	rule(fwd, ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq), ctEstablished(), verdict(&expr.Verdict{Kind: expr.VerdictAccept}))
	rule(fwd, ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq), verdict(drop))
	nat := chain("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	rule(nat, nfproto(unix.NFPROTO_IPV4), ipIn(12, egressPool), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq), verdict(&expr.Masq{}))

	fwdOn, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return err
	}
	enable := strings.TrimSpace(string(fwdOn)) == "0"
	if enable {
		g := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: nftGuardTable})
		c.FlushTable(g)
		gc := c.AddChain(&nftables.Chain{Name: "forward", Table: g, Hooknum: nftables.ChainHookForward,
			Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: g, Chain: gc, Exprs: append(append(ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq),
			ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq)...), drop)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables rules: %w", err)
	}
	if enable {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
		log.Info("turned IPv4 forwarding on for the functions' egress; nftables table " + nftGuardTable +
			" drops every other forwarded packet, as before")
	}
	return nil
}

// ifname matches the input or output interface's name against vethPrefix (a prefix compare:
// the register holds the whole name, cmp looks at the prefix's bytes only).
func ifname(key expr.MetaKey, op expr.CmpOp) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: []byte(vethPrefix)}}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
}

// ipIn matches the IPv4 address at offset (12 source, 16 destination) against p.
func ipIn(offset uint32, p netip.Prefix) []expr.Any {
	mask := net.CIDRMask(p.Bits(), 32)
	a := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

// l4dport matches a TCP or UDP destination port.
func l4dport(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func ipNotIn(offset uint32, p netip.Prefix) []expr.Any {
	m := ipIn(offset, p)
	m[len(m)-1].(*expr.Cmp).Op = expr.CmpOpNeq
	return m
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}
