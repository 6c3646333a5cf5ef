package secretsync

import (
	"errors"
	"fmt"
	"text/template"
	"text/template/parse"
)

// checkTemplate bounds what a tenant's template can cost the controller.
// text/template has no execution budget, so the language is restricted
// where work could grow without output: no define, template or block
// (recursion and fan-out), and range only over "." itself (the fetched
// values), never nested. With that, execution is linear in the template's
// size times the number of fetched values; output is capped separately.
func checkTemplate(tp *template.Template) error {
	if len(tp.Templates()) > 1 {
		return errors.New("define and block are not allowed")
	}
	return checkNode(tp.Tree.Root, false)
}

func checkNode(n parse.Node, inRange bool) error {
	switch x := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if x == nil {
			return nil
		}
		for _, c := range x.Nodes {
			if err := checkNode(c, inRange); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return fmt.Errorf("{{template %q}} is not allowed", x.Name)
	case *parse.RangeNode:
		if inRange {
			return errors.New("nested range is not allowed")
		}
		if !rangesOverDot(x.Pipe) {
			return errors.New("range is allowed only over . (the fetched values)")
		}
		if err := checkNode(x.List, true); err != nil {
			return err
		}
		return checkNode(x.ElseList, inRange)
	case *parse.IfNode:
		if err := checkNode(x.List, inRange); err != nil {
			return err
		}
		return checkNode(x.ElseList, inRange)
	case *parse.WithNode:
		if err := checkNode(x.List, inRange); err != nil {
			return err
		}
		return checkNode(x.ElseList, inRange)
	}
	return nil
}

// rangesOverDot reports whether a range pipeline is exactly "." (with
// optional loop variables).
func rangesOverDot(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	_, ok := p.Cmds[0].Args[0].(*parse.DotNode)
	return ok
}

// safePrintf is printf without the widths and precisions that let a short
// format allocate gigabytes ("%0999999999d").
func safePrintf(format string, args ...any) (string, error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && (format[i] == '+' || format[i] == '-' || format[i] == '#' || format[i] == ' ' || format[i] == '0') {
			i++
		}
		for _, part := range []bool{true, false} {
			if !part {
				if i >= len(format) || format[i] != '.' {
					break
				}
				i++
			}
			n := 0
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				n = n*10 + int(format[i]-'0')
				if n > 256 {
					return "", errors.New("printf: width or precision over 256")
				}
				i++
			}
			if i < len(format) && format[i] == '*' {
				return "", errors.New("printf: * width is not allowed")
			}
		}
	}
	return fmt.Sprintf(format, args...), nil
}
