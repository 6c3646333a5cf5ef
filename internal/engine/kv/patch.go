package kv

// mergeObject applies patch to target as a JSON merge patch (RFC 7386)
// and returns the result; target is modified in place. Keys whose patch
// value is null are removed, objects merge recursively, and everything
// else, arrays included, replaces what was there.
func mergeObject(target, patch map[string]any) map[string]any {
	if target == nil {
		target = make(map[string]any, len(patch))
	}
	for k, v := range patch {
		if v == nil {
			delete(target, k)
			continue
		}
		target[k] = mergeValue(target[k], v)
	}
	return target
}

// mergeValue is the RFC 7386 MergePatch function for one value: a patch
// that is not an object replaces the target; an object patch merges into
// the target if it is an object, else into an empty one.
func mergeValue(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, _ := target.(map[string]any)
	return mergeObject(t, p)
}
