//! The AP trampoline: one page below 1 MiB that takes a starting AP from
//! real mode through protected mode into long mode, onto its own stack, and
//! into `ap::ap_entry`.
//!
//! Code and data share the page. The data is [`TrampolineData`], a
//! `#[repr(C)]` struct whose field offsets the assembly takes from
//! `offset_of!`, with a size assert, so the two cannot drift apart. The page
//! is identity-mapped read+execute only (W^X): the one write an AP makes,
//! taking its ticket, happens in real mode, before paging is on. The GDT's
//! accessed bits are preset so the CPU never writes it either.

use core::mem::{offset_of, size_of};

use x86_64::PhysAddr;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};

use crate::mem::{self, frames, vmem};

/// Where the data sits in the page; the code must end before it.
const DATA_OFFSET: usize = 0xE00;

/// Flat 32-bit code, 32-bit data and 64-bit code descriptors, accessed bit preset.
const GDT_CODE32: u64 = 0x00CF_9B00_0000_FFFF;
const GDT_DATA: u64 = 0x00CF_9300_0000_FFFF;
const GDT_CODE64: u64 = 0x00AF_9B00_0000_FFFF;
const SEL_CODE32: u16 = 0x08;
const SEL_DATA: u16 = 0x10;
const SEL_CODE64: u16 = 0x18;

/// Shared between the BSP (which fills it) and the trampoline code.
#[repr(C)]
pub struct TrampolineData {
    gdt: [u64; 4],
    /// `lgdt` operand: limit, base low, base high.
    gdtr: [u16; 3],
    /// `ljmpl` m16:32 operand into protected mode: offset low, high, selector.
    pm_jump: [u16; 3],
    /// Same, into long mode.
    lm_jump: [u16; 3],
    _pad: u16,
    /// Incremented by each AP (in real mode) to pick its stack slot.
    ticket: u32,
    /// A PML4 below 4 GiB for the 32-bit `mov cr3`.
    cr3_low: u32,
    /// The kernel's real CR3, loaded once in long mode.
    kernel_cr3: u64,
    /// Address of an array of stack tops, indexed by ticket.
    stack_tops: u64,
    /// `ap::ap_entry`.
    entry: u64,
}

const _: () = assert!(size_of::<TrampolineData>() == 88);
const _: () = assert!(DATA_OFFSET + size_of::<TrampolineData>() <= 4096);

core::arch::global_asm!(
    r#"
    .section .text.ap_trampoline, "ax"
    .global ap_trampoline_start
    .global ap_trampoline_end
    .global ap_trampoline_pm
    .global ap_trampoline_lm
    .code16
ap_trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx
    mov $1, %esi
    lock xaddl %esi, {data}+{ticket}
    lgdtl {data}+{gdtr}
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *({data}+{pm_jump})

    .code32
ap_trampoline_pm:
    mov ${sel_data}, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov {data}+{cr3_low}(%ebx), %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax
    mov %eax, %cr0
    ljmpl *{data}+{lm_jump}(%ebx)

    .code64
ap_trampoline_lm:
    mov {data}+{kernel_cr3}(%rbx), %rax
    mov %rax, %cr3
    mov {data}+{stack_tops}(%rbx), %rax
    mov %esi, %edi
    mov (%rax,%rdi,8), %rsp
    xor %ebp, %ebp
    mov {data}+{entry}(%rbx), %rax
    push $0
    jmp *%rax
ap_trampoline_end:
    .text
    "#,
    data = const DATA_OFFSET,
    ticket = const offset_of!(TrampolineData, ticket),
    gdtr = const offset_of!(TrampolineData, gdtr),
    pm_jump = const offset_of!(TrampolineData, pm_jump),
    lm_jump = const offset_of!(TrampolineData, lm_jump),
    cr3_low = const offset_of!(TrampolineData, cr3_low),
    kernel_cr3 = const offset_of!(TrampolineData, kernel_cr3),
    stack_tops = const offset_of!(TrampolineData, stack_tops),
    entry = const offset_of!(TrampolineData, entry),
    sel_data = const SEL_DATA,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_pm: u8;
    static ap_trampoline_lm: u8;
    static ap_trampoline_end: u8;
}

/// The installed trampoline page.
#[derive(Clone, Copy, Debug)]
pub struct Trampoline {
    page: PhysAddr,
}

impl Trampoline {
    /// Copies the trampoline into a low page, identity-maps it read+execute
    /// and fills in its data. Boot CPU, once.
    pub fn install(ap_entry: extern "C" fn(u32) -> !, stack_tops: *const u64) -> Result<Trampoline, &'static str> {
        // Labels of the `global_asm!` above; only their addresses are taken.
        let (start, pm, lm, end) = (
            &raw const ap_trampoline_start,
            &raw const ap_trampoline_pm,
            &raw const ap_trampoline_lm,
            &raw const ap_trampoline_end,
        );
        let len = end as usize - start as usize;
        let (pm_off, lm_off) = (pm as usize - start as usize, lm as usize - start as usize);
        if len > DATA_OFFSET {
            return Err("AP trampoline code overlaps its data");
        }
        let frame = frames::alloc_low().ok_or("no free page below 1 MiB for the AP trampoline")?;
        let pml4_low = frames::alloc_low().ok_or("no free page below 1 MiB for the AP page table")?;
        let page = frame.start_address();
        vmem::identity_map(page, PageTableFlags::PRESENT).map_err(|_| "cannot identity-map the AP trampoline")?;
        copy_pml4(pml4_low);

        let base = page.as_u64() as u32;
        let data = TrampolineData {
            gdt: [0, GDT_CODE32, GDT_DATA, GDT_CODE64],
            gdtr: split_gdtr(base + DATA_OFFSET as u32),
            pm_jump: far_ptr(base + pm_off as u32, SEL_CODE32),
            lm_jump: far_ptr(base + lm_off as u32, SEL_CODE64),
            _pad: 0,
            ticket: 0,
            cr3_low: pml4_low.start_address().as_u64() as u32,
            kernel_cr3: Cr3::read().0.start_address().as_u64(),
            stack_tops: stack_tops as u64,
            entry: ap_entry as usize as u64,
        };
        let dst = mem::phys_to_virt(page).as_mut_ptr::<u8>();
        // SAFETY: `dst` is the freshly allocated low frame's writable alias;
        // nothing runs from it yet, and the copy fits (checked above).
        unsafe {
            core::ptr::copy_nonoverlapping(start, dst, len);
            core::ptr::write(dst.add(DATA_OFFSET).cast::<TrampolineData>(), data);
        }
        Ok(Trampoline { page })
    }

    /// The STARTUP IPI vector: the page number of the trampoline.
    pub fn sipi_vector(&self) -> u8 {
        (self.page.as_u64() >> 12) as u8
    }

    /// Resets the ticket counter before a batch of APs is started.
    pub fn reset_tickets(&self) {
        let data = mem::phys_to_virt(self.page + DATA_OFFSET as u64).as_mut_ptr::<TrampolineData>();
        // SAFETY: no AP runs the trampoline while the BSP prepares a batch.
        unsafe { core::ptr::addr_of_mut!((*data).ticket).write_volatile(0) };
    }

    /// How many APs took a ticket since the last reset.
    pub fn tickets_taken(&self) -> u32 {
        let data = mem::phys_to_virt(self.page + DATA_OFFSET as u64).as_ptr::<TrampolineData>();
        // SAFETY: a plain aligned read of a field APs update with `lock xadd`.
        unsafe { core::ptr::addr_of!((*data).ticket).read_volatile() }
    }
}

fn split_gdtr(base: u32) -> [u16; 3] {
    [(4 * 8 - 1) as u16, base as u16, (base >> 16) as u16]
}

fn far_ptr(offset: u32, selector: u16) -> [u16; 3] {
    [offset as u16, (offset >> 16) as u16, selector]
}

/// A copy of the live PML4 in a frame below 4 GiB (the 32-bit `mov cr3` in
/// the trampoline cannot load a higher one). It shares every lower-level
/// table, so it maps exactly what the kernel maps; the AP switches to the
/// real CR3 as soon as it is in long mode.
fn copy_pml4(dst: PhysFrame) {
    let src = mem::phys_to_virt(Cr3::read().0.start_address()).as_ptr::<u8>();
    let to = mem::phys_to_virt(dst.start_address()).as_mut_ptr::<u8>();
    // SAFETY: both are whole mapped frames; `dst` is fresh and unshared.
    unsafe { core::ptr::copy_nonoverlapping(src, to, 4096) };
}
