package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// IfaceAddrs returns the addresses (with their prefix lengths) of the named
// network interface, or an error when it does not exist.
type IfaceAddrs func(name string) ([]netip.Prefix, error)

// ErrNoInterface is returned (wrapped) by [SystemIfaceAddrs] for an
// interface that does not exist.
var ErrNoInterface = errors.New("no such network interface")

// SystemIfaceAddrs is the machine's [IfaceAddrs], from net.InterfaceByName.
func SystemIfaceAddrs(name string) ([]netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, ErrNoInterface)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("reading addresses of %q: %w", name, err)
	}
	var ps []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		ps = append(ps, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return ps, nil
}

// CheckHost checks the configuration against this machine's network
// interfaces: each named interface exists and each failover gateway lies
// in a subnet of its interface. Load does not run it, since interfaces may
// come up after imon starts; `imon check` and `imon configure` do.
func CheckHost(c *Config) Problems {
	return CheckHostWith(c, SystemIfaceAddrs)
}

// CheckHostWith is [CheckHost] with the interface lookup as a parameter.
func CheckHostWith(c *Config, lookup IfaceAddrs) Problems {
	var ps Problems
	if c.Failover.Enable {
		for _, w := range []struct {
			prefix string
			wan    WAN
		}{{"primary", c.Failover.Primary}, {"standby", c.Failover.Standby}} {
			if w.wan.If == "" {
				continue
			}
			addrs, err := lookup(w.wan.If)
			if err != nil {
				ps = append(ps, c.problem(SectionFailover, w.prefix+"-if", ifaceErr(w.wan.If, err)))
				continue
			}
			if w.wan.GW.IsValid() {
				if err := CheckGateway(w.wan.GW, addrs); err != nil {
					ps = append(ps, c.problem(SectionFailover, w.prefix+"-gw",
						fmt.Sprintf("%v (interface %s)", err, w.wan.If)))
				}
			}
		}
	}
	if c.DDNS.Enable && c.DDNS.Interface != "" {
		if _, err := lookup(c.DDNS.Interface); err != nil {
			ps = append(ps, c.problem(SectionDDNS, "interface", ifaceErr(c.DDNS.Interface, err)))
		}
	}
	return ps
}

func ifaceErr(name string, err error) string {
	if errors.Is(err, ErrNoInterface) {
		return fmt.Sprintf("interface %q does not exist", name)
	}
	return err.Error()
}

// ErrNoAddress is returned (wrapped) by [CheckGateway] when the interface
// has no address of the gateway's family, so that the gateway cannot be
// checked yet (DHCP may not have run).
var ErrNoAddress = errors.New("the interface has no address of the gateway's family (yet)")

// CheckGateway checks that gw lies in one of the subnets of an interface's
// addresses and is not one of those addresses itself.
func CheckGateway(gw netip.Addr, addrs []netip.Prefix) error {
	gw = gw.Unmap().WithZone("")
	same := false
	for _, p := range addrs {
		a := p.Addr().Unmap().WithZone("")
		if a.Is4() != gw.Is4() {
			continue
		}
		same = true
		if a == gw {
			return fmt.Errorf("gateway %s is the interface's own address", gw)
		}
		if netip.PrefixFrom(a, p.Bits()).Masked().Contains(gw) {
			return nil
		}
	}
	if !same {
		return fmt.Errorf("cannot check gateway %s: %w", gw, ErrNoAddress)
	}
	return fmt.Errorf("gateway %s is not in a subnet of the interface (%s)", gw, prefixList(addrs, gw.Is4()))
}

func prefixList(addrs []netip.Prefix, v4 bool) string {
	s := ""
	for _, p := range addrs {
		if p.Addr().Unmap().Is4() != v4 {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += p.String()
	}
	return s
}
