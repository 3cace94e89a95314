# package_xo.tcl -- package the RTL kernel nessa_fl_rtl as a Vitis .xo (needs Vivado/Vitis;
# not run in CI: no Xilinx tools here). The flow is the one of Xilinx's RTL-kernel examples:
# Vivado project -> IP-XACT core with the kernel's bus interfaces and register map -> package_xo.
#
#   vivado -mode batch -source fpga_kernels/rtl/package_xo.tcl -tclargs <out.xo> [LANES] [N_MAX] [RNG_BPC] [RNG_UNITS] [OUTSTANDING]
#   v++ -l -t hw --platform xilinx_u2_gen3x4_xdma_gc_2_202110_1 --config fpga_kernels/nessa_smartssd.cfg \
#       -o nessa.xclbin <hls .xo files> <out.xo>
# (`make -C fpga_kernels hw` runs both; nessa_smartssd.cfg holds the kernel's nk / sp lines).
# kernel.xml's m_axi_gmem dataWidth must equal 16*LANES (edit it for a non-default LANES).

if {[llength $argv] < 1} {
    puts "usage: vivado -mode batch -source package_xo.tcl -tclargs <out.xo> \[LANES\] \[N_MAX\] \[RNG_BPC\] \[RNG_UNITS\] \[OUTSTANDING\]"
    exit 1
}
set xo_path [file normalize [lindex $argv 0]]
set lanes   [expr {[llength $argv] > 1 ? [lindex $argv 1] : 32}]
set n_max   [expr {[llength $argv] > 2 ? [lindex $argv 2] : 8192}]
set rng_bpc [expr {[llength $argv] > 3 ? [lindex $argv 3] : 2}]
set rng_units [expr {[llength $argv] > 4 ? [lindex $argv 4] : 4}]
set outstanding [expr {[llength $argv] > 5 ? [lindex $argv 5] : 8}]
set src_dir [file dirname [file normalize [info script]]]
set work    [file normalize ./nessa_fl_rtl_pack]
file delete -force $work

create_project -force pack_prj $work/prj
add_files -norecurse [glob $src_dir/*.v]
set_property top nessa_fl_rtl [current_fileset]
set_property generic "LANES=$lanes N_MAX=$n_max RNG_BPC=$rng_bpc RNG_UNITS=$rng_units OUTSTANDING=$outstanding" [current_fileset]
update_compile_order -fileset sources_1

ipx::package_project -root_dir $work/ip -vendor nessa.dev -library kernel -taxonomy /KernelIP \
    -import_files -set_current false
ipx::unload_core $work/ip/component.xml
ipx::edit_ip_in_project -upgrade true -name pack_edit -directory $work/ip $work/ip/component.xml
set core [ipx::current_core]
set_property core_revision 1 $core
foreach up [ipx::get_user_parameters -of_objects $core] {
    ipx::remove_user_parameter [get_property NAME $up] $core
}
# ap_clk drives both interfaces; ap_rst_n is active low
ipx::associate_bus_interfaces -busif m_axi_gmem -clock ap_clk $core
ipx::associate_bus_interfaces -busif s_axi_control -clock ap_clk $core

# register map: every word fl_axil_ctrl.v decodes (host/device/rtl/regmap.py REG, kernel.xml;
# tests/rtl/test_link.py checks the four agree); pointers name the master they address
set mm [ipx::add_memory_map -quiet s_axi_control $core]
set_property slave_memory_map_ref s_axi_control [ipx::get_bus_interfaces -of_objects $core s_axi_control]
set blk [ipx::add_address_block -quiet reg0 $mm]
set_property range 0x1000 $blk
foreach {name off size} {
    CTRL 0x000 32  GIER 0x004 32  IP_IER 0x008 32  IP_ISR 0x00C 32
    sim 0x010 64  n 0x018 32  k 0x01C 32  ld 0x020 32
    out_ids 0x028 64  out_gains 0x030 64  out_weights 0x038 64  out_stats 0x040 64
    status 0x048 32  cycles 0x04C 64
    mode 0x054 32  seed 0x058 32  sample_size 0x05C 32
    parts 0x060 32  parts_ptr 0x068 64
} {
    set reg [ipx::add_register -quiet $name $blk]
    set_property address_offset $off $reg
    set_property size $size $reg
}
# status and cycles are the kernel's read-only results, not arguments (kernel.xml has no arg for them)
foreach ptr {sim out_ids out_gains out_weights out_stats parts_ptr} {
    set p [ipx::add_register_parameter -quiet ASSOCIATED_BUSIF [ipx::get_registers $ptr -of_objects $blk]]
    set_property value m_axi_gmem $p
}

set_property sdx_kernel true $core
set_property sdx_kernel_type rtl $core
set_property ipi_drc {ignore_freq_hz true} $core
set_property vitis_drc {ctrl_protocol ap_ctrl_hs} $core
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity -kernel $core
ipx::save_core $core
close_project -delete

package_xo -force -xo_path $xo_path -kernel_name nessa_fl_rtl -ip_directory $work/ip \
    -kernel_xml $src_dir/kernel.xml
puts "wrote $xo_path"
